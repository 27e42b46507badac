// The RUN --mount manager: turns an exec vertex's mounts (tmpfs, bind, cache,
// secret, ssh) into the bind and tmpfs mounts runc performs, plus the variables
// some of them add to the environment (a secret's env=, SSH_AUTH_SOCK).
//
// Everything a mount holds for the run — a mounted input snapshot, a throwaway
// snapshot behind a writable bind, a cache directory's lock, a secret's temp
// file — is released by release(), which the exec op calls before it commits
// (commit means "done writing") and again, harmlessly, on failure.
//
// Where the data lives:
//   bind     the input's committed snapshot, mounted read-only; `rw` gets a
//            scratch snapshot on it that is removed afterwards (writes are lost)
//   cache    <state>/cache/mounts/<sha256(key)>/, shared by every build on the
//            state dir; the key is the id and what the cache starts from (a from=
//            seed, or uid/gid/mode: cacheDirKey); `sharing=locked` holds a flock,
//            `sharing=private` takes another instance while one is held
//   secret   a 0400 file in <state>/tmp/secret-*/ for the run only, never in a layer
//   ssh      a socket in <state>/tmp/img-ssh-*/ forwarding to the agent named by --ssh
//   tmpfs    nothing on disk
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ExecMount, ExecVertex } from '../graph/types';
import type { BindMount, TmpfsMount } from '../exec/run';
import { lockFile } from '../host/index';
import { withMounted } from '../snapshot/index';
import type { Snapshotter } from '../snapshot/types';
import { copyTree } from '../snapshot/sys';
import { LockBusyError, NotFoundError, UsageError } from '../util/errors';
import { debug } from '../util/log';
import { resolveInRoot } from '../util/rootpath';
import type { VertexResult } from './types';

export interface SecretSource {
  id: string;
  src?: string;
  env?: string;
}

export interface MountSources {
  stateDir: string;
  sn: Snapshotter;
  // The directory of a cache mount id (CacheStore.mountDir).
  cacheMountDir(id: string): string;
  secrets?: SecretSource[];
  ssh?: { id: string; paths: string[] }[];
  env?: NodeJS.ProcessEnv; // where --secret env= and SSH_AUTH_SOCK are read
}

// An empty directory standing in for a scratch input (bind of nothing, COPY --from=scratch).
export async function emptyDir(stateDir: string): Promise<string> {
  const dir = path.join(stateDir, 'tmp', 'empty');
  await fsp.mkdir(dir, { recursive: true });
  return dir;
}

// A mount source the input lacks: BuildKit finds it computing the step's cache key
// (the content under a source is part of it) and says so in these words.
function sourceNotFound(source: string): NotFoundError {
  return new NotFoundError(`failed to compute cache key: "${path.posix.join('/', source)}": not found`, {
    hint: 'a RUN --mount source is a path in the build context or in the from= stage or image',
  });
}

// Which cache directory a cache mount gets. As BuildKit keys a cache by its id and
// the ref it starts from: a from= stage or image (here its snapshot) or, given uid=,
// gid= or mode=, the directory those make — so `id=x,uid=1000` is not the root-owned
// cache of a plain `id=x`, and a changed from= stage seeds a new cache.
export function cacheDirKey(m: ExecMount, seed: string | null | undefined): string {
  const id = m.cacheId || m.target;
  if (seed) return `${id}\0from:${seed}:${m.source ?? '/'}`;
  if (m.uid === undefined && m.gid === undefined && m.mode === undefined) return id;
  return `${id}\0owner:${m.uid ?? 0}:${m.gid ?? 0}:${(m.mode ?? 0o755).toString(8)}`;
}

export class RunMounts {
  readonly mounts: (BindMount | TmpfsMount)[] = [];
  readonly env: string[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];

  constructor(private readonly src: MountSources) {}

  // Prepares every mount of `v`; on failure what was prepared is released.
  static async forVertex(src: MountSources, v: ExecVertex, inputs: VertexResult[]): Promise<RunMounts> {
    const rm = new RunMounts(src);
    try {
      for (const m of v.mounts) await rm.add(m, v, inputs);
      // As BuildKit's llb: SSH_AUTH_SOCK names the first ssh mount's socket, unless the
      // step's environment sets it — whether or not an optional agent was there to mount.
      const ssh = v.mounts.find((m) => m.type === 'ssh');
      if (ssh && !v.env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) rm.env.push(`SSH_AUTH_SOCK=${ssh.target || '/run/buildkit/ssh_agent.0'}`);
    } catch (err) {
      await rm.release();
      throw err;
    }
    return rm;
  }

  async release(): Promise<void> {
    while (this.cleanups.length) await this.cleanups.pop()!().catch((e) => debug(`releasing a RUN mount: ${(e as Error).message}`));
  }

  private async add(m: ExecMount, v: ExecVertex, inputs: VertexResult[]): Promise<void> {
    switch (m.type) {
      case 'tmpfs':
        this.mounts.push({ type: 'tmpfs', target: m.target, size: m.size });
        return;
      case 'bind':
        return this.bind(m, v, m.input !== undefined ? inputs[m.input] : undefined);
      case 'cache':
        return this.cache(m, m.input !== undefined ? inputs[m.input]?.snapshot : null);
      case 'secret':
        return this.secret(m);
      case 'ssh':
        return this.ssh(m);
    }
  }

  private async bind(m: ExecMount, v: ExecVertex, input: VertexResult | undefined): Promise<void> {
    const sn = this.src.sn;
    let root: string;
    if (!input?.snapshot) root = await emptyDir(this.src.stateDir);
    else if (m.readonly !== false) {
      const mm = await sn.mount(input.snapshot);
      this.cleanups.push(() => mm.release());
      root = mm.rootfs;
    } else {
      // A writable bind mount: writes go to a throwaway snapshot.
      const scratch = await sn.prepare(input.snapshot, `bind mount for ${v.name}`);
      const mm = await sn.mount(scratch);
      this.cleanups.push(async () => {
        await mm.release();
        await sn.remove(scratch);
      });
      root = mm.rootfs;
    }
    const source = await resolveInRoot(root, m.source ?? '/');
    if (!fs.existsSync(source)) throw sourceNotFound(m.source ?? '/');
    this.mounts.push({ type: 'bind', source, target: m.target, readonly: m.readonly !== false });
  }

  private async cache(m: ExecMount, seed: string | null | undefined): Promise<void> {
    let dir = this.src.cacheMountDir(cacheDirKey(m, seed));
    if (m.sharing === 'private') dir = await this.privateDir(m, seed);
    const fresh = !fs.existsSync(dir);
    await fsp.mkdir(dir, { recursive: true });
    if (fresh) {
      await fsp.chmod(dir, m.mode ?? 0o755);
      if (m.uid !== undefined || m.gid !== undefined) await fsp.chown(dir, m.uid ?? 0, m.gid ?? 0).catch(() => undefined);
      if (seed) {
        await withMounted(this.src.sn, seed, async (r) => {
          const from = await resolveInRoot(r, m.source ?? '/');
          await fsp.rm(dir, { recursive: true, force: true });
          // Not seeded: the next build must find it fresh, and fail the same way.
          if (!fs.existsSync(from)) throw sourceNotFound(m.source ?? '/');
          await copyTree(from, dir);
        });
      }
    }
    if (m.sharing === 'locked') {
      const lock = await lockFile(`${dir}.lock`, 'exclusive', { wait: true });
      this.cleanups.push(() => lock.release());
    }
    this.mounts.push({ type: 'bind', source: dir, target: m.target, readonly: Boolean(m.readonly) });
  }

  // sharing=private: the cache if no other step holds it, else another instance of it
  // (BuildKit makes a new one when the cache is in use); held until the step ends.
  private async privateDir(m: ExecMount, seed: string | null | undefined): Promise<string> {
    const key = cacheDirKey(m, seed);
    for (let n = 0; ; n++) {
      const dir = this.src.cacheMountDir(n === 0 ? key : `${key}\0private:${n}`);
      await fsp.mkdir(path.dirname(dir), { recursive: true });
      try {
        const lock = await lockFile(`${dir}.lock`, 'exclusive', { wait: false });
        this.cleanups.push(() => lock.release());
        return dir;
      } catch (err) {
        if (!(err instanceof LockBusyError)) throw err;
      }
    }
  }

  private async secret(m: ExecMount): Promise<void> {
    const id = m.secretId ?? path.basename(m.target);
    const data = await this.secretValue(id);
    if (data === null) {
      // BuildKit's words (its secrets store's ErrNotFound wrapped with the id).
      if (m.required) throw new NotFoundError(`secret ${id}: not found`, { hint: `the step requires it: pass it with --secret id=${id},src=FILE` });
      return;
    }
    if (m.env) {
      this.env.push(`${m.env}=${data.toString('utf8')}`);
      if (!m.target) return;
    }
    const target = m.target || `/run/secrets/${id}`;
    await fsp.mkdir(path.join(this.src.stateDir, 'tmp'), { recursive: true });
    const dir = await fsp.mkdtemp(path.join(this.src.stateDir, 'tmp', 'secret-'));
    this.cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'secret');
    await fsp.writeFile(file, data, { mode: m.mode ?? 0o400 });
    if (m.uid !== undefined || m.gid !== undefined) await fsp.chown(file, m.uid ?? 0, m.gid ?? 0).catch(() => undefined);
    this.mounts.push({ type: 'bind', source: file, target, readonly: true });
  }

  private async secretValue(id: string): Promise<Buffer | null> {
    const s = (this.src.secrets ?? []).find((x) => x.id === id);
    if (!s) return null;
    if (s.src) {
      try {
        return await fsp.readFile(s.src);
      } catch (err) {
        throw new UsageError(`secret ${id}: cannot read ${s.src}: ${(err as Error).message}`, { hint: 'fix the src= path of --secret', cause: err });
      }
    }
    const val = (this.src.env ?? process.env)[s.env ?? id];
    return val === undefined ? null : Buffer.from(val);
  }

  // The agent is reached through a socket of our own, owned and moded as the mount
  // says (BuildKit's default 0600 root:root; uid=/gid=/mode= for a USER that is not
  // root), which forwards each connection to the agent given with --ssh.
  private async ssh(m: ExecMount): Promise<void> {
    const id = m.sshId ?? 'default';
    const spec = (this.src.ssh ?? []).find((s) => s.id === id);
    const sock = spec?.paths[0] ?? (spec ? (this.src.env ?? process.env).SSH_AUTH_SOCK : undefined);
    if (!sock) {
      if (m.required) throw new NotFoundError(`no SSH key "${id}" forwarded from the client`, { hint: `the step requires it: pass an agent with --ssh ${id}[=SOCKET]` });
      return;
    }
    await fsp.mkdir(path.join(this.src.stateDir, 'tmp'), { recursive: true });
    let parent = path.join(this.src.stateDir, 'tmp');
    // A socket path is at most 107 bytes: a deep state dir gets one under the system's tmpdir.
    if (Buffer.byteLength(parent) > 80) parent = os.tmpdir();
    const dir = await fsp.mkdtemp(path.join(parent, 'img-ssh-'));
    await fsp.chmod(dir, 0o711);
    const proxy = path.join(dir, 'agent.sock');
    const conns = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const agent = net.connect(sock);
      conns.add(client).add(agent);
      const drop = () => {
        client.destroy();
        agent.destroy();
        conns.delete(client);
        conns.delete(agent);
      };
      client.on('error', drop).on('close', drop);
      agent.on('error', drop).on('close', drop);
      client.pipe(agent).pipe(client);
    });
    this.cleanups.push(async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await fsp.rm(dir, { recursive: true, force: true });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(proxy, () => resolve());
    });
    server.unref(); // a step's proxy never holds the process open
    await fsp.chmod(proxy, (m.mode ?? 0o600) & 0o777);
    await fsp.chown(proxy, m.uid ?? 0, m.gid ?? 0).catch((e) => debug(`ssh socket owner ${m.uid ?? 0}:${m.gid ?? 0}: ${(e as Error).message}`));
    const target = m.target || '/run/buildkit/ssh_agent.0';
    this.mounts.push({ type: 'bind', source: proxy, target, readonly: true });
  }
}
