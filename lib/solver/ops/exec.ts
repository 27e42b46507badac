// The exec op (RUN): the command runs through runc in a writable snapshot on its
// rootfs input, with the mounts the mount manager (../mounts.ts) prepares, and
// the snapshot is committed as the step's layer. Its cache key is the vertex
// definition and its inputs' keys alone (no content key): what the command
// does is not observable before it runs. A step for another architecture runs
// through binfmt_misc emulation, checked before anything is prepared.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ExecVertex, Vertex } from '../../graph/types';
import { requireEmulation } from '../../exec/binfmt';
import { runContainer } from '../../exec/run';
import { compatiblePlatforms, formatPlatform, matchPlatform } from '../../images/platform';
import { DiskFullError, NotFoundError, StepError } from '../../util/errors';
import { diskFullError, diskSpace } from '../../util/fsutil';
import { debug, isDebug } from '../../util/log';
import { resolveInRoot } from '../../util/rootpath';
import { withMounted } from '../../snapshot/index';
import { entryLine, type ContextScan } from '../checksum';
import { RunMounts } from '../mounts';
import type { ContentKey, Executor, RunContext, VertexResult } from '../types';
import { chainOf, type OpEnv } from './shared';

export function execOp(env: OpEnv): Executor<ExecVertex> {
  // BuildKit keeps --shm-size and --ulimit in the exec op, so they are in its cache key:
  // here they join the key when given (a build without them keeps its keys).
  const limits = [
    ...(env.o.shmSize ? [`shm=${env.o.shmSize}`] : []),
    ...(env.o.rlimits ?? []).map((r) => `${r.type}=${r.soft}:${r.hard}`),
  ].join(',');
  return {
    async contentKey(v, ctx): Promise<ContentKey | string | undefined> {
      const bound = await contextMountKey(env, v, ctx.inputVertices);
      const parts = [...(limits ? [`limits:${limits}`] : []), ...(bound ? [bound.content] : [])];
      if (!parts.length) return undefined;
      return { content: parts.join(';'), replaceInputs: bound?.replaceInputs };
    },
    run: (v, ctx) => runExec(env, v, ctx, limits),
  };
}

// RUN --mount from the build context is keyed by the files it mounts, as BuildKit
// keys a read-only or write-discarding mount by the content under its source
// (so editing another file of the context keeps the step cached). A source
// missing from the context fails here, before anything runs, as in BuildKit.
async function contextMountKey(env: OpEnv, v: ExecVertex, inputVertices: Vertex[]): Promise<ContentKey | undefined> {
  const parts: string[] = [];
  const replaced: number[] = [];
  for (const [i, src] of inputVertices.entries()) {
    if (src.kind !== 'local' || i === v.rootfs) continue;
    const scan = env.contextScans.get(src.id);
    if (!scan) continue;
    // Only mounts whose writes are discarded: one with an output is its own result.
    const users = v.mounts.filter((m) => m.input === i);
    if (!users.length || users.some((m) => m.output !== undefined)) continue;
    const sources = [...new Set(users.map((m) => (m.source ?? '/').replace(/^\/+|\/+$/g, '')))];
    parts.push(`${i}=${src.id}:${await sourcesDigest(scan, sources)}`);
    replaced.push(i);
  }
  if (!replaced.length) return undefined;
  return { content: `mount-sources:${parts.join(',')}`, replaceInputs: replaced };
}

// The digest of the scan's entries at or under each source ('' is the whole context);
// a source through a symlink keys by the whole context (its target may be anywhere).
async function sourcesDigest(scan: ContextScan, sources: string[]): Promise<string> {
  if (sources.includes('')) return scan.digest.slice('sha256:'.length);
  const h = createHash('sha256');
  const found = new Set<string>();
  let viaLink = false;
  for await (const f of scan.entries()) {
    for (const s of sources) {
      if (f.rel === s || f.rel.startsWith(s + '/')) {
        found.add(s);
        if (f.rel === s && f.type === 'symlink') viaLink = true;
        h.update(entryLine(f));
        break;
      }
      if (f.type === 'symlink' && s.startsWith(f.rel + '/')) viaLink = true;
    }
  }
  for (const s of sources) {
    if (found.has(s) || viaLink) continue;
    throw new NotFoundError(`failed to compute cache key: "/${s}": not found`, {
      hint: 'a RUN --mount source is a path in the build context (or in the from= stage or image) and must not be excluded by .dockerignore',
    });
  }
  // A symlink on the way to a source: the mounted files are the link's target, anywhere in the context.
  if (viaLink) return scan.digest.slice('sha256:'.length);
  return h.digest('hex');
}

async function runExec(env: OpEnv, v: ExecVertex, ctx: RunContext, limits: string): Promise<VertexResult> {
  const { o, sn } = env;
  if (v.platform && !compatiblePlatforms(o.platform).some((p) => matchPlatform(p, v.platform))) {
    requireEmulation(v.platform.architecture, `RUN for ${formatPlatform(v.platform)} on this ${formatPlatform(o.platform)} host`);
  }
  const base = v.rootfs >= 0 ? ctx.inputs[v.rootfs] : undefined;
  // BuildKit's second chance: a step whose stage or image mounts hold the same files
  // as when it last ran is that run's result, whatever changed upstream of them.
  const byContent = ctx.noCache ? null : await contentCacheKey(env, v, ctx, limits);
  if (byContent) {
    const hit = await o.cache.get(byContent, v);
    if (hit?.snapshot && !hit.lazy) {
      ctx.progress.log(`the mounted files are those of an earlier run: its result is used\n`, 2);
      return hit;
    }
  }
  const active = await sn.prepare(base?.snapshot ?? null, v.name);
  let committed: string | null = null;
  let mounts: RunMounts | null = null;
  const root = await sn.mount(active).catch(async (err) => {
    await sn.remove(active).catch(() => undefined);
    throw err;
  });
  try {
    mounts = await RunMounts.forVertex({ ...o, cacheMountDir: (id) => o.cache.mountDir(id) }, v, ctx.inputs);
    const hosts = [...(o.extraHosts ?? []), ...(v.extraHosts ?? [])];
    const res = await runContainer({
      rootfs: root.rootfs,
      args: v.args,
      // Proxy build args reach the process but not the key: the vertex id leaves them out.
      env: [...v.env, ...(v.proxyEnv ?? []), ...mounts.env],
      cwd: v.cwd || '/',
      user: v.user || 'root',
      hostname: v.hostname || 'buildkitsandbox', // BuildKit's executor default: RUN output must not depend on a random name
      network: v.network === 'default' ? (o.network ?? 'default') : v.network,
      mounts: mounts.mounts,
      extraHosts: hosts.length ? hosts : undefined,
      stateDir: o.stateDir,
      signal: ctx.signal,
      // runc's own messages are shown only by --debug: without it, no log file per step.
      runtimeLog: isDebug(),
      shmSize: o.shmSize,
      rlimits: o.rlimits,
      // The entitlement was checked before the solve (builder/index.ts).
      insecure: v.security === 'insecure',
      onOutput: (stream, chunk) => ctx.progress.log(chunk, stream === 'stdout' ? 1 : 2),
    });
    if (!(v.validExitCodes ?? [0]).includes(res.exitCode)) {
      ctx.signal.throwIfAborted();
      const failed = `process "${v.args.join(' ')}" did not complete successfully: exit code: ${res.exitCode}`;
      // A command that ran out of disk is not to blame: say the snapshot's filesystem is full.
      const space = await diskSpace(root.rootfs);
      if (space?.full) {
        const full = diskFullError(root.rootfs, 'the snapshot of this step', space);
        throw new DiskFullError(`${failed}: ${full.message}`, { hint: full.hint });
      }
      // No hint: the step's last output and its Dockerfile lines are shown above it.
      throw new StepError(failed);
    }
    // Unmount everything before committing: commit means "done writing".
    await mounts.release();
    await root.release();
    committed = await sn.commit(active, v.name, ctx.noCache ? undefined : ctx.key);
    const result: VertexResult = { snapshot: committed, layers: chainOf(base, committed) };
    if (byContent) await o.cache.put(byContent, v, result).catch((e) => debug(`content cache record: ${(e as Error).message}`));
    return result;
  } finally {
    await mounts?.release();
    await root.release().catch((e) => debug(`exec cleanup: ${(e as Error).message}`));
    if (committed === null) await sn.remove(active).catch(() => undefined);
  }
}

// The step's key by content, as BuildKit's slow cache key: the definition, the rootfs
// by its layers, and for each stage or image input that only mounts hold (read-only
// or with writes discarded), the digest of the files under the mounted sources.
// Null when no such input (the definition key says it all).
async function contentCacheKey(env: OpEnv, v: ExecVertex, ctx: RunContext, limits: string): Promise<string | null> {
  const parts: string[] = [];
  for (const [i, src] of ctx.inputVertices.entries()) {
    if (i === v.rootfs || src.kind === 'local') continue;
    const users = v.mounts.filter((m) => m.input === i);
    if (!users.length || users.some((m) => m.output !== undefined)) return null;
    const snapshot = ctx.inputs[i]?.snapshot;
    const sources = [...new Set(users.map((m) => m.source ?? '/'))].sort();
    if (!snapshot) {
      parts.push(`${i}:empty`);
      continue;
    }
    const digests = await withMounted(env.sn, snapshot, async (root) => {
      const out: string[] = [];
      for (const s of sources) out.push(`${s}=${await treeDigest(await resolveInRoot(root, s))}`);
      return out;
    });
    parts.push(`${i}:${digests.join(',')}`);
  }
  if (!parts.length) return null;
  // Mounts from the build context count by the files they mount, as in the definition key.
  const context = (await contextMountKey(env, v, ctx.inputVertices))?.content ?? '';
  const base = v.rootfs >= 0 ? ctx.inputs[v.rootfs] : undefined;
  const chain = (base?.layers ?? []).map((l) => l.blob?.diffId ?? l.snapshot ?? '?');
  const h = createHash('sha256').update(JSON.stringify(['exec-content/v1', v.id, limits, chain, parts, context]));
  return `sha256:${h.digest('hex')}`;
}

// A digest of a file tree: names, types, modes, owners, link targets and file contents.
async function treeDigest(top: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string, rel: string): Promise<void> => {
    let st;
    try {
      st = await fsp.lstat(p);
    } catch {
      h.update(`${rel}\0missing\n`);
      return;
    }
    h.update(`${rel}\0${st.mode.toString(8)}\0${st.uid}:${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(await fsp.readlink(p));
    else if (st.isFile()) {
      const fh = await fsp.open(p, 'r');
      try {
        for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
      } finally {
        await fh.close().catch(() => undefined);
      }
    } else if (st.isDirectory()) {
      h.update('\n');
      for (const name of (await fsp.readdir(p)).sort()) await walk(path.join(p, name), `${rel}/${name}`);
      return;
    } else h.update(String(st.rdev));
    h.update('\n');
  };
  await walk(top, '');
  return h.digest('hex');
}
