// The real executors: each vertex kind on the runtime rooms (registry pull,
// snapshots, runc, file operations). The scheduler calls them through the
// Executor interface; every result is a committed snapshot named by the
// vertex's cache key, so other processes and later builds can reuse it.
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { ChownSpec, ExecMount, ExecVertex, GitSourceVertex, HttpSourceVertex, ImageSourceVertex, LocalSourceVertex } from '../graph/types';
import { ContentStore } from '../content/store';
import { ImageStore } from '../images/store';
import { isIndexMediaType, MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from '../images/types';
import type { Mounted, Snapshotter } from '../snapshot/types';
import { ImgError, isErrno } from '../util/errors';
import { debug } from '../util/log';
import { CacheStore } from './cache';
import { ChecksumCache, includeMatcher, scanContext, SELECT_ALL, type ContextFile, type Selector } from './checksum';
import { keyHex } from './keys';
import type { Executors, KeyContext, LayerSlot, RunContext, VertexLogger, VertexResult } from './types';

export interface SecretSource {
  id: string;
  src?: string;
  env?: string;
}

export interface RuntimeOptions {
  stateDir: string;
  sn: Snapshotter;
  cache: CacheStore;
  platform: Platform;
  // Local sources by name ("context", --build-context names) → directory.
  localDirs: Record<string, string>;
  // .dockerignore verdicts for a local source (undefined → take the vertex's excludePatterns).
  selectorFor?(source: string, v: LocalSourceVertex): Selector;
  secrets?: SecretSource[];
  ssh?: { id: string; paths: string[] }[];
  network?: 'default' | 'none' | 'host';
  extraHosts?: { host: string; ip: string }[];
  pull?: boolean; // always resolve image references at the registry
  insecureRegistry?: boolean;
  sourceDateEpoch?: number;
  env?: NodeJS.ProcessEnv;
}

interface ImageInfo {
  ref: string;
  manifest: Manifest;
  manifestDigest: Digest;
  config: ImageConfig;
}

// Docker media types → OCI equivalents (same bytes), so an OCI manifest can name base layers.
export function ociLayerType(mt: string): string {
  switch (mt) {
    case MediaType.DockerLayerGzip:
      return MediaType.OciLayerGzip;
    case MediaType.DockerLayer:
      return MediaType.OciLayer;
    case 'application/vnd.docker.image.rootfs.diff.tar.zstd':
      return MediaType.OciLayerZstd;
    default:
      return mt;
  }
}

export interface Runtime {
  executors: Executors;
  // For the frontend: a base image's config, resolved the way the build will use it.
  resolveImageConfig(ref: string, platform: Platform, progress?: VertexLogger): Promise<{ ref: string; digest: string; config: ImageConfig } | null>;
}

export function createRuntime(o: RuntimeOptions): Runtime {
  const content = new ContentStore(o.stateDir);
  const images = new ImageStore(o.stateDir);
  const imageInfo = new Map<string, Promise<ImageInfo>>(); // ref + platform → resolved image
  const contextScans = new Map<string, ContextFile[]>(); // vertex id → selected files
  const downloads = new Map<string, { file: string; digest: string }>(); // http vertex id → temp file
  const checksumCaches = new Map<string, Promise<ChecksumCache>>();

  // ---------- image sources ----------
  async function readManifestFor(target: Descriptor, platform: Platform): Promise<{ manifest: Manifest; digest: Digest } | null> {
    if (!(await content.has(target.digest))) return null;
    if (isIndexMediaType(target.mediaType)) {
      const idx = await content.readJson<Index>(target.digest);
      const { selectManifest } = await import('../images/platform');
      let chosen: Descriptor;
      try {
        chosen = selectManifest(idx.manifests, platform);
      } catch {
        return null;
      }
      if (!(await content.has(chosen.digest))) return null;
      return { manifest: await content.readJson<Manifest>(chosen.digest), digest: chosen.digest };
    }
    return { manifest: await content.readJson<Manifest>(target.digest), digest: target.digest };
  }

  async function complete(m: Manifest): Promise<boolean> {
    for (const d of [m.config, ...m.layers]) if (!(await content.has(d.digest))) return false;
    return true;
  }

  async function resolveImage(v: ImageSourceVertex, ctx: KeyContext): Promise<ImageInfo> {
    const { parseReference, formatReference } = await import('../images/reference');
    const ref = parseReference(v.ref);
    const name = formatReference(ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' });
    const platform = v.platform ?? o.platform;
    const forcePull = o.pull || v.resolveMode === 'pull';
    ctx.progress.status('resolve', { name: `resolve ${name}` });
    // docker's default (--pull missing): the local store first, then the registry.
    if (!forcePull) {
      let target: Descriptor | null = null;
      if (ref.digest) {
        const d = ref.digest as Digest;
        if (await content.has(d)) target = { mediaType: '', digest: d, size: 0 };
        if (target) {
          const head = await content.readJson<{ mediaType?: string; manifests?: unknown }>(d);
          target.mediaType = head.mediaType ?? (head.manifests ? MediaType.OciIndex : MediaType.OciManifest);
        }
      } else {
        target = (await images.get(name))?.target ?? null;
      }
      if (target) {
        const got = await readManifestFor(target, platform);
        if (got && (await complete(got.manifest))) {
          ctx.progress.status('resolve', { name: `resolve ${name}@${got.digest}`, done: true });
          return { ref: name, manifest: got.manifest, manifestDigest: got.digest, config: await content.readJson<ImageConfig>(got.manifest.config.digest) };
        }
      }
      if (v.resolveMode === 'local') {
        throw new ImgError(`image ${name} is not in the local store`, { hint: `pull it first: img pull ${name}` });
      }
    }
    const { pullImage } = await import('../registry/pull');
    const sizes = new Map<string, number>();
    const res = await pullImage(v.ref, {
      stateDir: o.stateDir,
      platform,
      insecure: o.insecureRegistry,
      onEvent: (ev) => {
        if (ev.type === 'blob') sizes.set(ev.digest, ev.size);
        else if (ev.type === 'progress') ctx.progress.status(ev.digest, { name: ev.digest, current: ev.current, total: ev.size });
        else if (ev.type === 'done') ctx.progress.status(ev.digest, { name: ev.digest, current: ev.size, total: ev.size, done: true });
      },
    });
    const manifest = await content.readJson<Manifest>(res.manifest.digest);
    ctx.progress.status('resolve', { name: `resolve ${name}@${res.manifest.digest}`, done: true });
    return { ref: name, manifest, manifestDigest: res.manifest.digest, config: await content.readJson<ImageConfig>(manifest.config.digest) };
  }

  // One resolution per reference and platform per build: the frontend's config
  // lookup and the image vertex agree on the digest, and pull at most once.
  function image(v: ImageSourceVertex, ctx: KeyContext): Promise<ImageInfo> {
    const plat = v.platform ?? o.platform;
    const id = `${v.ref}|${plat.os}/${plat.architecture}/${plat.variant ?? ''}`;
    let p = imageInfo.get(id);
    if (!p) {
      p = resolveImage(v, ctx);
      imageInfo.set(id, p);
      p.catch(() => imageInfo.delete(id));
    }
    return p;
  }

  const quiet = { log() {}, status() {} };
  async function resolveImageConfig(ref: string, platform: Platform, progress: VertexLogger = quiet) {
    const v = { id: '', name: ref, kind: 'image', inputs: [], ref, platform } as ImageSourceVertex;
    const info = await image(v, { signal: new AbortController().signal, progress, noCache: false });
    return { ref: info.ref, digest: info.manifestDigest, config: structuredClone(info.config) };
  }

  // ---------- helpers ----------
  async function withMounted<T>(id: string, fn: (root: string) => Promise<T>): Promise<T> {
    const m = await o.sn.mount(id);
    try {
      return await fn(m.rootfs);
    } finally {
      await m.release();
    }
  }

  // A new snapshot on `parent`, filled by fn, committed under the cache key.
  // With --no-cache the fresh result must win over an older one under the same
  // key, so it is committed unkeyed (the cache record then points at it).
  async function produce(parent: string | null, description: string, ctx: RunContext, fn: (root: string) => Promise<void>): Promise<string> {
    const active = await o.sn.prepare(parent, description);
    try {
      await withMounted(active, fn);
      return await o.sn.commit(active, description, ctx.noCache ? undefined : ctx.key);
    } catch (err) {
      await o.sn.remove(active).catch((e) => debug(`removing ${active}: ${(e as Error).message}`));
      throw err;
    }
  }

  function chainOf(input: VertexResult | undefined, snapshot: string): LayerSlot[] {
    return [...(input?.layers ?? []), { snapshot }];
  }

  function checksumCache(dir: string): Promise<ChecksumCache> {
    let p = checksumCaches.get(dir);
    if (!p) {
      p = ChecksumCache.open(o.stateDir, dir);
      checksumCaches.set(dir, p);
    }
    return p;
  }

  function localDir(v: LocalSourceVertex): string {
    const dir = o.localDirs[v.source];
    if (!dir) {
      if (v.source === 'context') {
        throw new ImgError('this Dockerfile copies from the build context, but there is none (Dockerfile given on stdin)', {
          hint: 'pass a context directory: img build -f - DIR < Dockerfile',
        });
      }
      throw new ImgError(`build context "${v.source}" is not defined`, { hint: `pass it with --build-context ${v.source}=PATH` });
    }
    return dir;
  }

  async function ownerFor(root: string, chown: ChownSpec): Promise<{ uid: number; gid: number }> {
    const { resolveUser } = await import('../exec/passwd');
    const spec = chown.group !== undefined ? `${chown.user ?? '0'}:${chown.group}` : (chown.user ?? '0');
    const u = await resolveUser(root, spec);
    return { uid: u.uid, gid: u.gid };
  }

  const executors: Executors = {
    image: {
      async contentKey(v, ctx) {
        const info = await image(v, ctx);
        return `manifest:${info.manifestDigest}`;
      },
      async run(v, ctx) {
        const info = await image(v, ctx);
        const { unpackImage } = await import('../snapshot/index');
        ctx.progress.status('unpack', { name: `unpacking ${info.ref}@${info.manifestDigest}` });
        let snapshot: string | null = null;
        if (info.manifest.layers.length > 0) {
          snapshot = await unpackImage(
            o.stateDir,
            o.sn,
            info.manifest,
            info.config,
            (ev) => {
              if (ev.status === 'extracting') ctx.progress.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}` });
              else if (ev.status === 'done') ctx.progress.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}`, current: ev.bytes, done: true });
            },
            { ref: `${info.ref}@${info.manifestDigest}` },
          );
        }
        ctx.progress.status('unpack', { name: `unpacking ${info.ref}@${info.manifestDigest}`, done: true });
        const diffIds = info.config.rootfs?.diff_ids ?? [];
        const layers: LayerSlot[] = info.manifest.layers.map((d, i) => ({
          blob: { digest: d.digest, diffId: diffIds[i], mediaType: ociLayerType(d.mediaType), size: d.size },
        }));
        return { snapshot, layers, meta: { manifest: info.manifestDigest, config: info.manifest.config.digest } };
      },
    },

    local: {
      async contentKey(v, ctx) {
        const dir = localDir(v);
        let selector = o.selectorFor ? o.selectorFor(v.source, v) : SELECT_ALL;
        if (v.includePatterns && v.includePatterns.length) {
          const follow = v.followPaths?.length ? await followLinks(dir, v.followPaths) : [];
          selector = { ...selector, included: includeMatcher([...v.includePatterns, ...follow]) };
        }
        const cache = await checksumCache(dir);
        const name = `transferring ${v.source}`;
        ctx.progress.status('transfer', { name: `${name}:` });
        const scan = await scanContext(dir, selector, cache, (files, bytes) =>
          ctx.progress.status('transfer', { name: `${name}: ${files} files`, current: bytes }),
        );
        contextScans.set(v.id, scan.files);
        ctx.progress.status('transfer', { name: `${name}: ${scan.files.length} files`, current: scan.bytes, done: true });
        return `local:${scan.digest}`;
      },
      async run(v, ctx) {
        const files = contextScans.get(v.id);
        if (!files) throw new Error(`local source ${v.name} was not scanned`);
        const src = localDir(v);
        const { loadAddon } = await import('../host/index');
        let addon: ReturnType<typeof loadAddon> | null = null;
        try {
          addon = loadAddon();
        } catch {
          addon = null;
        }
        const snapshot = await produce(null, `local ${v.source}`, ctx, async (root) => {
          // Directories first (they come sorted, parents first), then files in parallel.
          const dirs: ContextFile[] = [];
          const leaves: ContextFile[] = [];
          for (const f of files) (f.type === 'dir' ? dirs : leaves).push(f);
          for (const d of dirs) await fsp.mkdir(path.join(root, d.rel), { mode: d.mode & 0o7777, recursive: true });
          let next = 0;
          const worker = async () => {
            while (next < leaves.length) {
              ctx.signal.throwIfAborted();
              const f = leaves[next++];
              const dst = path.join(root, f.rel);
              if (f.type === 'symlink') {
                await fsp.symlink(f.linkTarget!, dst);
                continue;
              }
              const from = path.join(src, f.rel);
              if (addon) await addon.copyFile(from, dst, f.mode & 0o7777);
              else await fsp.copyFile(from, dst);
              await fsp.chmod(dst, f.mode & 0o7777);
              const t = new Date(f.mtimeMs);
              await fsp.utimes(dst, t, t);
            }
          };
          await Promise.all(Array.from({ length: Math.min(16, leaves.length) }, worker));
          // Directory mtimes last: creating entries changed them.
          for (const d of dirs.reverse()) {
            const st = await fsp.stat(path.join(src, d.rel)).catch(() => null);
            if (st) await fsp.utimes(path.join(root, d.rel), st.atime, st.mtime);
          }
        });
        return { snapshot, layers: [{ snapshot }] };
      },
    },

    http: {
      async contentKey(v, ctx) {
        const got = await downloadHttp(v, ctx, o.stateDir);
        downloads.set(v.id, got);
        return `http:${got.digest}:${v.filename ?? ''}:${v.chmod ?? ''}`;
      },
      async run(v, ctx) {
        const got = downloads.get(v.id);
        if (!got) throw new Error(`http source ${v.url} was not downloaded`);
        const name = v.filename ?? httpFileName(v.url);
        try {
          const snapshot = await produce(null, `http ${v.url}`, ctx, async (root) => {
            const dst = path.join(root, name);
            await fsp.copyFile(got.file, dst);
            await fsp.chmod(dst, v.chmod ?? 0o600);
          });
          return { snapshot, layers: [{ snapshot }] };
        } finally {
          await fsp.rm(got.file, { force: true });
          downloads.delete(v.id);
        }
      },
    },

    git: {
      async contentKey(v, ctx) {
        const sha = await gitResolve(v, ctx);
        return `git:${sha}:${v.subdir ?? ''}:${v.keepGitDir ? 1 : 0}`;
      },
      async run(v, ctx) {
        const snapshot = await produce(null, `git ${v.remote}`, ctx, async (root) => {
          await gitCheckout(v, root, ctx);
        });
        return { snapshot, layers: [{ snapshot }] };
      },
    },

    exec: {
      async run(v, ctx) {
        return runExec(v, ctx);
      },
    },

    file: {
      // COPY from a local source: key by the checksum of just the files the
      // actions read, so editing one file reruns only the COPYs that read it.
      async contentKey(v, ctx) {
        const parts: string[] = [];
        const replaced: number[] = [];
        ctx.inputVertices.forEach((src, i) => {
          if (src.kind !== 'local') return;
          const files = contextScans.get(src.id);
          if (!files) return;
          const pats: string[] = [];
          for (const a of v.actions) if (a.op === 'copy' && a.src === i) pats.push(...a.srcPaths);
          const match = includeMatcher(pats.map((p) => p.replace(/^\/+/, '') || '.'));
          const h = createHash('sha256');
          for (const f of files) if (match(f.rel, f.type === 'dir') === 'yes') h.update(`${f.rel}\0${f.type}\0${(f.mode & 0o7777).toString(8)}\0${f.hash ?? ''}\n`);
          parts.push(`${i}=${src.id}:${h.digest('hex')}`);
          replaced.push(i);
        });
        if (replaced.length === 0) return undefined;
        return { content: `copy-sources:${parts.join(',')}`, replaceInputs: replaced };
      },
      async run(v, ctx) {
        const { applyFileActions } = await import('./ops/file');
        const base = v.base >= 0 ? ctx.inputs[v.base] : undefined;
        const mounts: Mounted[] = [];
        const roots = new Map<number, string>();
        try {
          // Mount every other input read-only for the duration of the actions.
          for (let i = 0; i < ctx.inputs.length; i++) {
            if (i === v.base) continue;
            const snap = ctx.inputs[i].snapshot;
            if (!snap) {
              roots.set(i, await emptyDir(o.stateDir));
              continue;
            }
            const m = await o.sn.mount(snap);
            mounts.push(m);
            roots.set(i, m.rootfs);
          }
          const localInput = (i: number) => {
            const kind = ctx.inputVertices[i]?.kind;
            return kind === 'local' || kind === 'http' || kind === 'git';
          };
          const snapshot = await produce(base?.snapshot ?? null, v.name, ctx, async (destRoot) => {
            await applyFileActions({
              destRoot,
              actions: v.actions,
              inputRoot: (i) => {
                if (i === v.base) return destRoot;
                const r = roots.get(i);
                if (!r) throw new Error(`file op input ${i} is not mounted`);
                return r;
              },
              resolveOwner: (chown) => ownerFor(destRoot, chown),
              // Files from the build context belong to root in the image, as with docker.
              defaultOwner: (i) => (localInput(i) ? { uid: 0, gid: 0 } : undefined),
              unpackArchive: (file, destDir, owner) => unpackArchive(file, destDir, owner),
              sourceDateEpoch: o.sourceDateEpoch,
            });
          });
          return { snapshot, layers: chainOf(base, snapshot) };
        } finally {
          for (const m of mounts) await m.release().catch(() => undefined);
        }
      },
    },
  };
  return { executors, resolveImageConfig };

  async function runExec(v: ExecVertex, ctx: RunContext): Promise<VertexResult> {
    const { runContainer } = await import('../exec/run');
    const base = v.rootfs >= 0 ? ctx.inputs[v.rootfs] : undefined;
    const active = await o.sn.prepare(base?.snapshot ?? null, v.name);
    const cleanups: (() => Promise<void>)[] = [];
    let committed: string | null = null;
    try {
      const root = await o.sn.mount(active);
      cleanups.push(() => root.release());
      const env = [...v.env];
      const mounts: import('../exec/run').RunOptions['mounts'] = [];
      for (const m of v.mounts) await addMount(m, v, ctx, mounts, env, cleanups);
      const hosts = [...(o.extraHosts ?? []), ...(v.extraHosts ?? [])];
      const network = v.network === 'default' ? (o.network ?? 'default') : v.network;
      const res = await runContainer({
        rootfs: root.rootfs,
        args: v.args,
        env,
        cwd: v.cwd || '/',
        user: v.user || 'root',
        hostname: v.hostname || 'buildkitsandbox', // BuildKit's executor default: RUN output must not depend on a random name
        network,
        mounts,
        extraHosts: hosts.length ? hosts : undefined,
        stateDir: o.stateDir,
        signal: ctx.signal,
        onOutput: (stream, chunk) => ctx.progress.log(chunk, stream === 'stdout' ? 1 : 2),
      });
      const ok = (v.validExitCodes ?? [0]).includes(res.exitCode);
      if (!ok) {
        ctx.signal.throwIfAborted();
        throw new ImgError(`process "${v.args.join(' ')}" did not complete successfully: exit code: ${res.exitCode}`, {
          hint: 'fix the command (its last output lines are shown above)',
        });
      }
      // Unmount everything before committing: commit means "done writing".
      while (cleanups.length) await cleanups.pop()!();
      committed = await o.sn.commit(active, v.name, ctx.noCache ? undefined : ctx.key);
      return { snapshot: committed, layers: chainOf(base, committed) };
    } finally {
      while (cleanups.length) await cleanups.pop()!().catch((e) => debug(`exec cleanup: ${(e as Error).message}`));
      if (committed === null) await o.sn.remove(active).catch(() => undefined);
    }
  }

  async function addMount(
    m: ExecMount,
    v: ExecVertex,
    ctx: RunContext,
    mounts: import('../exec/run').RunOptions['mounts'],
    env: string[],
    cleanups: (() => Promise<void>)[],
  ): Promise<void> {
    switch (m.type) {
      case 'tmpfs':
        mounts.push({ type: 'tmpfs', target: m.target, size: m.size });
        return;
      case 'bind': {
        const input = m.input !== undefined ? ctx.inputs[m.input] : undefined;
        let root: string;
        if (!input?.snapshot) root = await emptyDir(o.stateDir);
        else if (m.readonly !== false) {
          const mm = await o.sn.mount(input.snapshot);
          cleanups.push(() => mm.release());
          root = mm.rootfs;
        } else {
          // A writable bind mount: writes go to a throwaway snapshot.
          const scratch = await o.sn.prepare(input.snapshot, `bind mount for ${v.name}`);
          const mm = await o.sn.mount(scratch);
          cleanups.push(async () => {
            await mm.release();
            await o.sn.remove(scratch);
          });
          root = mm.rootfs;
        }
        const { resolveInRoot } = await import('../exec/mounts');
        const source = await resolveInRoot(root, m.source ?? '/');
        mounts.push({ type: 'bind', source, target: m.target, readonly: m.readonly !== false });
        return;
      }
      case 'cache': {
        const id = m.cacheId || m.target;
        const dir = o.cache.mountDir(id);
        const fresh = !fs.existsSync(dir);
        await fsp.mkdir(dir, { recursive: true });
        if (fresh) {
          await fsp.chmod(dir, m.mode ?? 0o755);
          if (m.uid !== undefined || m.gid !== undefined) await fsp.chown(dir, m.uid ?? 0, m.gid ?? 0).catch(() => undefined);
          const seed = m.input !== undefined ? ctx.inputs[m.input]?.snapshot : null;
          if (seed) {
            const { copyTree } = await import('../snapshot/sys');
            await withMounted(seed, async (r) => {
              const { resolveInRoot } = await import('../exec/mounts');
              const from = await resolveInRoot(r, m.source ?? '/');
              await fsp.rm(dir, { recursive: true, force: true });
              await copyTree(from, dir);
            });
          }
        }
        if (m.sharing === 'locked') {
          const { lockFile } = await import('../host/index');
          const lock = await lockFile(`${dir}.lock`, 'exclusive', { wait: true });
          cleanups.push(() => lock.release());
        }
        mounts.push({ type: 'bind', source: dir, target: m.target, readonly: Boolean(m.readonly) });
        return;
      }
      case 'secret': {
        const id = m.secretId ?? path.basename(m.target);
        const data = await secretValue(id);
        if (data === null) {
          if (m.required) throw new ImgError(`secret ${id} is required but was not provided`, { hint: `pass it with --secret id=${id},src=FILE` });
          return;
        }
        if (m.env) {
          env.push(`${m.env}=${data.toString('utf8')}`);
          if (!m.target) return;
        }
        const target = m.target || `/run/secrets/${id}`;
        await fsp.mkdir(path.join(o.stateDir, 'tmp'), { recursive: true });
        const dir = await fsp.mkdtemp(path.join(o.stateDir, 'tmp', 'secret-'));
        const file = path.join(dir, 'secret');
        await fsp.writeFile(file, data, { mode: m.mode ?? 0o400 });
        if (m.uid !== undefined || m.gid !== undefined) await fsp.chown(file, m.uid ?? 0, m.gid ?? 0).catch(() => undefined);
        cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
        mounts.push({ type: 'bind', source: file, target, readonly: true });
        return;
      }
      case 'ssh': {
        const id = m.sshId ?? 'default';
        const spec = (o.ssh ?? []).find((s) => s.id === id);
        const sock = spec?.paths[0] ?? (spec ? (o.env ?? process.env).SSH_AUTH_SOCK : undefined);
        if (!sock) {
          if (m.required) throw new ImgError(`ssh agent "${id}" is required but was not provided`, { hint: `pass it with --ssh ${id}` });
          return;
        }
        const target = m.target || '/run/buildkit/ssh_agent.0';
        mounts.push({ type: 'bind', source: sock, target, readonly: true });
        env.push(`SSH_AUTH_SOCK=${target}`);
        return;
      }
    }
  }

  async function secretValue(id: string): Promise<Buffer | null> {
    const s = (o.secrets ?? []).find((x) => x.id === id);
    if (!s) return null;
    if (s.src) {
      try {
        return await fsp.readFile(s.src);
      } catch (err) {
        throw new ImgError(`secret ${id}: cannot read ${s.src}: ${(err as Error).message}`, { hint: 'fix the src= path of --secret' });
      }
    }
    const val = (o.env ?? process.env)[s.env ?? id];
    return val === undefined ? null : Buffer.from(val);
  }

  async function unpackArchive(file: string, destDir: string, owner: { uid: number; gid: number } | undefined): Promise<boolean> {
    const fh = await fsp.open(file, 'r');
    const head = Buffer.alloc(512);
    try {
      await fh.read(head, 0, 512, 0);
    } finally {
      await fh.close();
    }
    const { applyLayer, decompressStream, detectCompression } = await import('../archive/index');
    const c = detectCompression(head);
    const isTar = head.toString('latin1', 257, 262) === 'ustar';
    if (c === 'none' && !isTar) return false;
    const src = fs.createReadStream(file);
    const tar = c === 'none' ? src : src.pipe(decompressStream(c));
    try {
      await applyLayer(tar, {
        root: destDir,
        whiteoutFormat: 'native',
        sameOwner: true,
        idMap: owner ? () => [owner.uid, owner.gid] : undefined,
      });
    } catch (err) {
      if (c !== 'none' && !isTar) return false; // compressed but not a tar: copy as is
      throw err;
    }
    return true;
  }
}

async function emptyDir(stateDir: string): Promise<string> {
  const dir = path.join(stateDir, 'tmp', 'empty');
  await fsp.mkdir(dir, { recursive: true });
  return dir;
}

export function httpFileName(url: string): string {
  try {
    const u = new URL(url);
    const base = path.posix.basename(u.pathname);
    return base && base !== '/' ? decodeURIComponent(base) : 'index.html';
  } catch {
    return 'download';
  }
}

async function downloadHttp(v: HttpSourceVertex, ctx: KeyContext, stateDir: string): Promise<{ file: string; digest: string }> {
  const dir = path.join(stateDir, 'tmp');
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, `http-${process.pid}-${randomBytes(6).toString('hex')}`);
  const name = `${v.url}`;
  ctx.progress.status('download', { name: `downloading ${name}` });
  let res: Response;
  try {
    res = await fetch(v.url, { signal: ctx.signal, redirect: 'follow' });
  } catch (err) {
    throw new ImgError(`cannot download ${v.url}: ${(err as Error).message}`, { hint: 'check the URL in ADD and your network', cause: err });
  }
  if (!res.ok || !res.body) throw new ImgError(`cannot download ${v.url}: HTTP ${res.status}`, { hint: 'check the URL in ADD' });
  const total = Number(res.headers.get('content-length')) || undefined;
  const h = createHash('sha256');
  let n = 0;
  const out = fs.createWriteStream(file, { mode: 0o600 });
  try {
    for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
      h.update(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    await fsp.rm(file, { force: true });
    throw err;
  }
  const digest = `sha256:${h.digest('hex')}`;
  if (v.checksum && v.checksum !== digest) {
    await fsp.rm(file, { force: true });
    throw new ImgError(`checksum of ${v.url} is ${digest}, expected ${v.checksum}`, { hint: 'the file changed upstream or --checksum is wrong' });
  }
  ctx.progress.status('download', { name: `downloading ${name}`, current: n, total, done: true });
  return { file, digest };
}

function runGit(args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, signal: opts.signal, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      if (isErrno(e, 'ENOENT')) {
        reject(new ImgError('cannot use a git source: the `git` program is not installed', { hint: 'install git (apt-get install git)' }));
      } else reject(e);
    });
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new ImgError(`git ${args[0]} failed: ${err.trim().split('\n').pop() ?? ''}`, { hint: 'check the repository URL and ref' })),
    );
  });
}

async function gitResolve(v: GitSourceVertex, ctx: KeyContext): Promise<string> {
  if (v.ref && /^[0-9a-f]{40}$/.test(v.ref)) return v.ref;
  ctx.progress.status('resolve', { name: `resolve ${v.remote}${v.ref ? '#' + v.ref : ''}` });
  const out = await runGit(['ls-remote', v.remote, v.ref || 'HEAD'], { signal: ctx.signal });
  const line = out.split('\n').find((l) => l.trim());
  if (!line) throw new ImgError(`git ref ${v.ref ?? 'HEAD'} not found in ${v.remote}`, { hint: 'check the branch or tag name' });
  ctx.progress.status('resolve', { name: `resolve ${v.remote}${v.ref ? '#' + v.ref : ''}`, done: true });
  return line.split(/\s+/)[0];
}

async function gitCheckout(v: GitSourceVertex, root: string, ctx: RunContext): Promise<void> {
  const work = path.join(root, '.img-git-checkout');
  await runGit(['init', '-q', work], { signal: ctx.signal });
  await runGit(['-C', work, 'remote', 'add', 'origin', v.remote]);
  await runGit(['-C', work, 'fetch', '-q', '--depth', '1', 'origin', v.ref || 'HEAD'], { signal: ctx.signal });
  await runGit(['-C', work, 'checkout', '-q', 'FETCH_HEAD']);
  if (!v.keepGitDir) await fsp.rm(path.join(work, '.git'), { recursive: true, force: true });
  const from = v.subdir ? path.join(work, path.posix.normalize('/' + v.subdir)) : work;
  for (const name of await fsp.readdir(from)) {
    if (from === work && name === '.img-git-checkout') continue;
    await fsp.rename(path.join(from, name), path.join(root, name));
  }
  await fsp.rm(work, { recursive: true, force: true });
}

export { keyHex };

// BuildKit's FollowPaths: a symlink on a named context path (the path itself or a
// parent directory) brings its target along, so `COPY link /x` finds what the link
// points to. Literal paths only; wildcard sources are matched as they are.
async function followLinks(dir: string, paths: string[]): Promise<string[]> {
  const out = new Set<string>();
  const visit = async (rel: string, depth: number): Promise<void> => {
    const parts = rel.split('/').filter((p) => p && p !== '.');
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const next = cur ? `${cur}/${parts[i]}` : parts[i];
      const st = await fsp.lstat(path.join(dir, next)).catch(() => null);
      if (!st) return;
      if (st.isSymbolicLink()) {
        if (depth >= 40) return; // a loop: leave it to the copy to report
        const target = await fsp.readlink(path.join(dir, next));
        // Resolved inside the context: absolute targets and ".." stop at its root.
        const resolved = path.posix.normalize(path.posix.join('/', target.startsWith('/') ? '' : cur, target, ...parts.slice(i + 1))).slice(1);
        if (resolved) out.add(resolved);
        return visit(resolved, depth + 1);
      }
      cur = next;
    }
  };
  for (const p of paths) if (!/[*?[\\]/.test(p)) await visit(p, 0);
  return [...out];
}
