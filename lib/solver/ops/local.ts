// The local source op (the build context, --build-context directories): scans
// the selected files (.dockerignore, the COPY sources it is narrowed to) through
// the stat-keyed checksum cache and copies them into a snapshot.
// Its cache key is the checksum of the selected files; the scan is kept in
// OpEnv.contextScans for run() and for the file op's per-COPY key.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { LocalSourceVertex } from '../../graph/types';
import { loadAddon } from '../../host/index';
import { withMounted } from '../../snapshot/index';
import { hostErrorClass, ImgError, NotFoundError, UsageError } from '../../util/errors';
import { compileGlob, hasWildcards } from '../../util/glob';
import { debug } from '../../util/log';
import { ChecksumCache, includeMatcher, openSavedScan, pairByPath, scanContext, SELECT_ALL, type ContextFile, type ContextScan, type SavedScan } from '../checksum';
import type { Executor, KeyContext } from '../types';
import type { OpEnv } from './shared';

export function localOp(env: OpEnv): Executor<LocalSourceVertex> {
  const { o } = env;
  const checksumCaches = new Map<string, Promise<ChecksumCache>>(); // context dir → its cache
  // One scan per selection of a directory: sources selecting the same files share it.
  const scans = new Map<string, Promise<ContextScan>>();

  function checksumCache(dir: string): Promise<ChecksumCache> {
    let p = checksumCaches.get(dir);
    if (!p) {
      p = ChecksumCache.open(o.stateDir, dir);
      checksumCaches.set(dir, p);
    }
    return p;
  }

  async function scan(v: LocalSourceVertex, dir: string, ctx: KeyContext): Promise<ContextScan> {
    let selector = o.selectorFor ? o.selectorFor(v.source, v) : SELECT_ALL;
    if (v.includePatterns && v.includePatterns.length) {
      const follow = v.followPaths?.length ? await followLinks(dir, v.followPaths) : [];
      selector = { ...selector, included: includeMatcher([...v.includePatterns, ...follow]) };
    }
    const cache = await checksumCache(dir);
    const name = `transferring ${v.source}`;
    ctx.progress.status('transfer', { name: `${name}:` });
    const result = await scanContext(dir, selector, cache, {
      tmpDir: path.join(o.stateDir, 'tmp'),
      onProgress: (files, bytes) => ctx.progress.status('transfer', { name: `${name}: ${files} files`, current: bytes }),
    }).catch((err) => Promise.reject(senderError(err, dir)));
    ctx.progress.status('transfer', { name: `${name}: ${result.count} files`, current: result.bytes, done: true });
    return result;
  }

  return {
    async contentKey(v, ctx) {
      const dir = localDir(o.localDirs, v);
      const selection = JSON.stringify([dir, v.source, v.includePatterns ?? null, v.excludePatterns ?? null, v.followPaths ?? null]);
      let p = scans.get(selection);
      if (!p) {
        p = scan(v, dir, ctx);
        scans.set(selection, p);
        p.catch(() => scans.delete(selection));
      }
      const result = await p;
      env.contextScans.set(v.id, result);
      return `local:${result.digest}`;
    },

    async run(v, ctx) {
      const scan = env.contextScans.get(v.id);
      if (!scan) throw new Error(`local source ${v.name} was not scanned`);
      const src = localDir(o.localDirs, v);
      const cache = await checksumCache(src);
      const copyFile = copier();
      const description = `local ${v.source}`;
      const key = ctx.noCache ? undefined : ctx.key;
      // A snapshot under this key already (another process's): ours is dropped at commit,
      // and the record below must not describe it.
      const existed = key !== undefined && (await env.sn.get(key)) !== null;
      const prior = ctx.noCache ? null : await priorSnapshot(env, cache.root, scan);
      const make = async (base: PriorSnapshot | null): Promise<string> => {
        const active = await env.sn.prepare(base?.snapshot ?? null, description);
        try {
          await withMounted(env.sn, active, (root) =>
            base ? applyDelta(src, root, base.saved.entries(), scan.entries(), copyFile, ctx.signal) : fillAll(src, root, scan.entries(), copyFile, ctx.signal),
          ).catch((err) => Promise.reject(senderError(err, src)));
          return await env.sn.commit(active, description, key);
        } catch (err) {
          await env.sn.remove(active).catch((e) => debug(`removing ${active}: ${(e as Error).message}`));
          throw err;
        }
      };
      let snapshot: string;
      let depth = 0;
      try {
        snapshot = await make(prior);
        depth = prior ? prior.depth + 1 : 0;
      } catch (err) {
        // The previous snapshot gone meanwhile, a directory the delta cannot write into:
        // copy everything instead.
        if (!prior || ctx.signal.aborted) throw err;
        debug(`local ${v.source}: applying the change on ${prior.snapshot} failed (${(err as Error).message}); copying all`);
        snapshot = await make(null);
      } finally {
        await prior?.saved.close();
      }
      if (!existed) await recordSnapshot(env, cache.root, scan, { version: 2, snapshot, depth });
      return { snapshot, layers: [{ snapshot }] };
    },
  };
}

// ---- the snapshot of a local source, whole or as the change on the previous one

// A touched build copies only what changed: the previous snapshot of the same context
// directory (whatever selected it) becomes the parent, and the new one holds the
// difference. This snapshot is only ever read (COPY mounts it; it is never a layer of an
// image), so its own layering does not matter, and its content is exactly the selected
// files either way: its cache key (the checksum) stays what it was.
// The previous one is taken when it still exists, its chain is short (every touched build
// adds one overlay lower) and most of the bytes are unchanged.
const MAX_DEPTH = 8;

// <state>/cache/local-sources/<sha256 of the context's real path>.json: this header on
// the first line, then the snapshot's entries as the scan lists them (checksum.ts saveAs).
interface SnapshotRecord {
  version: 2;
  snapshot: string;
  depth: number; // snapshots below it that are deltas too
}

interface PriorSnapshot extends SnapshotRecord {
  saved: SavedScan; // its entries, read in step with the new scan's
}

function recordFile(stateDir: string, root: string): string {
  return path.join(stateDir, 'cache', 'local-sources', `${createHash('sha256').update(root).digest('hex')}.json`);
}

async function priorSnapshot(env: OpEnv, root: string, scan: ContextScan): Promise<PriorSnapshot | null> {
  const saved = await openSavedScan(recordFile(env.o.stateDir, root)).catch(() => null); // unreadable: copy everything
  if (!saved) return null;
  const rec = saved.header as Partial<SnapshotRecord> | null;
  const usable = async () => {
    if (rec?.version !== 2 || typeof rec.snapshot !== 'string' || typeof rec.depth !== 'number' || !(rec.depth < MAX_DEPTH)) return false;
    const info = await env.sn.get(rec.snapshot).catch(() => null);
    if (!info || info.kind !== 'committed') return false;
    let total = 0;
    let changed = 0;
    // Hard links are made by a whole fill only (a delta would write one name of an inode alone).
    const inodes = new Set<string>();
    for await (const [old, f] of pairByPath(saved.entries(), scan.entries())) {
      if (f?.type !== 'file') continue;
      if (f.ino !== undefined) {
        if (inodes.has(f.ino)) return false;
        inodes.add(f.ino);
      }
      total += f.size;
      if (!sameEntry(old, f)) changed += f.size;
    }
    return changed * 2 <= total;
  };
  if (await usable()) return { version: 2, snapshot: rec!.snapshot!, depth: rec!.depth!, saved };
  await saved.close();
  return null;
}

async function recordSnapshot(env: OpEnv, root: string, scan: ContextScan, rec: SnapshotRecord): Promise<void> {
  const file = recordFile(env.o.stateDir, root);
  try {
    await scan.saveAs(file, rec);
  } catch (err) {
    debug(`recording the local snapshot of ${root}: ${(err as Error).message}`); // the next build copies everything
  }
}

// An entry the previous snapshot holds exactly as the new one must: same kind, bits,
// content and time (a file touched without a change is rewritten for its time).
function sameEntry(a: ContextFile | undefined, b: ContextFile): boolean {
  return a !== undefined && a.type === b.type && a.mode === b.mode && a.mtimeMs === b.mtimeMs && (a.type === 'dir' || (a.hash === b.hash && a.size === b.size));
}

type CopyOne = (from: string, to: string, mode: number) => Promise<void>;

function copier(): CopyOne {
  let addon: ReturnType<typeof loadAddon> | null = null;
  try {
    addon = loadAddon();
  } catch {
    addon = null;
  }
  if (addon) {
    const a = addon;
    return async (from, to, mode) => void (await a.copyFile(from, to, mode)); // sets the whole mode itself
  }
  return async (from, to, mode) => {
    await fsp.copyFile(from, to);
    await fsp.chmod(to, mode);
  };
}

// Both read the selection in walk order (a directory before its entries) and hold only
// the directories whose mode and times come back at the end, never a list of the files.
async function fillAll(src: string, root: string, files: AsyncIterable<ContextFile>, copyFile: CopyOne, signal: AbortSignal): Promise<void> {
  const leaves = new LeafWriter(src, root, copyFile, signal);
  const dirs: ContextFile[] = [];
  await leaves.around(async () => {
    for await (const f of files) {
      if (f.type === 'dir') {
        // Owner-writable while filling; the whole mode (setgid, sticky, group/other
        // write, which mkdir's mode and the umask would drop) is set at the end.
        await fsp.mkdir(path.join(root, f.rel), { mode: 0o700, recursive: true });
        dirs.push(f);
      } else await leaves.write(f);
    }
  });
  await finishDirs(root, dirs);
}

// The new selection on a mounted copy of the previous one, both read in walk order: what
// went away or changed kind is removed, new directories made, new and changed files and
// links written (unlinked first: writing through would copy the old file up), and the
// directories whose entries or metadata changed get their mode and times back.
async function applyDelta(src: string, root: string, before: AsyncIterable<ContextFile>, files: AsyncIterable<ContextFile>, copyFile: CopyOne, signal: AbortSignal): Promise<void> {
  const parentOf = (rel: string) => path.posix.dirname(rel);
  const leaves = new LeafWriter(src, root, copyFile, signal);
  const resetDirs = new Set<string>(); // directories whose mode and times are set again
  const dirs: ContextFile[] = []; // the new selection's directories, for those
  // The directories above the current entry, as before and now: one written into is
  // owner-writable meanwhile (its mode comes back last).
  const above: { rel: string; old?: ContextFile; now?: ContextFile; writable: boolean }[] = [];
  const touchParent = async (rel: string) => {
    const parent = parentOf(rel);
    resetDirs.add(parent);
    const d = above.at(-1);
    if (!d || d.rel !== parent || d.writable) return;
    d.writable = true;
    if (d.old?.type === 'dir' && d.now?.type === 'dir' && (d.old.mode & 0o700) !== 0o700) await fsp.chmod(path.join(root, parent), (d.old.mode & 0o7777) | 0o700);
  };
  let removed: string | null = null; // a directory removed whole: what was under it goes with it
  await leaves.around(async () => {
    for await (const [old, f] of pairByPath(before, files)) {
      const rel = (f ?? old)!.rel;
      if (removed !== null && rel.startsWith(`${removed}/`) && !f) continue;
      while (above.length && !rel.startsWith(`${above.at(-1)!.rel}/`)) above.pop();
      let prev = old;
      if (old && (!f || (f.type !== old.type && (f.type === 'dir' || old.type === 'dir')))) {
        await touchParent(rel); // (no write in flight is under it: it is not a directory now)
        await fsp.rm(path.join(root, rel), { recursive: true, force: true });
        if (old.type === 'dir') removed = rel;
        prev = undefined;
      }
      if (f?.type === 'dir') dirs.push(f);
      if (f && !sameEntry(prev, f)) {
        await touchParent(rel);
        if (f.type === 'dir') {
          if (prev?.type !== 'dir') await fsp.mkdir(path.join(root, rel), { mode: 0o700 });
          resetDirs.add(rel);
        } else {
          if (prev) await fsp.rm(path.join(root, rel), { force: true });
          await leaves.write(f);
        }
      }
      if (f?.type === 'dir') above.push({ rel, old: prev, now: f, writable: false });
    }
  });
  await finishDirs(root, dirs.filter((d) => resetDirs.has(d.rel)));
}

// Files and links, 16 at a time (copies are bound by syscall latency), in the order given.
class LeafWriter {
  private readonly running = new Set<Promise<void>>();
  private failed: { err: unknown } | null = null;
  // inode → its first file's path here, once written: the context's hard links stay links,
  // as fsutil's send and receive keep them (only for the same content, in case two files
  // on different mounts share an inode number).
  private readonly inodes = new Map<string, { hash: string | undefined; written: Promise<string> }>();

  constructor(
    private readonly src: string,
    private readonly root: string,
    private readonly copyFile: CopyOne,
    private readonly signal: AbortSignal,
  ) {}

  async write(f: ContextFile): Promise<void> {
    this.signal.throwIfAborted();
    while (this.running.size >= 16) await Promise.race(this.running);
    if (this.failed) throw this.failed.err;
    const p: Promise<void> = this.one(f)
      .catch((err) => void (this.failed ??= { err }))
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Runs `fill` (which calls write), then waits for every write; the first failure is thrown, after the writes in flight end. */
  async around(fill: () => Promise<void>): Promise<void> {
    try {
      await fill();
    } finally {
      await Promise.all(this.running);
    }
    if (this.failed) throw this.failed.err;
  }

  private async one(f: ContextFile): Promise<void> {
    const dst = path.join(this.root, f.rel);
    const t = new Date(f.mtimeMs);
    if (f.type === 'symlink') {
      await fsp.symlink(f.linkTarget!, dst);
      await fsp.lutimes(dst, t, t); // links keep their times too, as in BuildKit's context transfer
      return;
    }
    if (f.socket) {
      await fsp.writeFile(dst, '', { mode: 0o600 });
      await fsp.chmod(dst, f.mode & 0o7777);
      await fsp.utimes(dst, t, t);
      return;
    }
    const first = f.ino !== undefined ? this.inodes.get(f.ino) : undefined;
    if (first && first.hash === f.hash) {
      await fsp.link(await first.written, dst);
      return;
    }
    let done: (p: string) => void = () => {};
    if (f.ino !== undefined && !first) this.inodes.set(f.ino, { hash: f.hash, written: new Promise<string>((r) => (done = r)) });
    try {
      await this.copyFile(path.join(this.src, f.rel), dst, f.mode & 0o7777);
      await fsp.utimes(dst, t, t);
    } finally {
      done(dst); // a failed copy fails the fill; its links then fail too
    }
  }
}

// Directory modes and times last, deepest first: creating entries changed the times.
async function finishDirs(root: string, sortedDirs: ContextFile[]): Promise<void> {
  for (let i = sortedDirs.length - 1; i >= 0; i--) {
    const d = sortedDirs[i];
    const dst = path.join(root, d.rel);
    await fsp.chmod(dst, d.mode & 0o7777);
    const t = new Date(d.mtimeMs);
    await fsp.utimes(dst, t, t);
  }
}

// A context file img cannot read, in BuildKit's words ("error from sender: open P: permission
// denied"), with what to do; errors about anything outside the context pass unchanged.
function senderError(err: unknown, dir: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof ImgError || typeof e?.code !== 'string' || typeof e.path !== 'string') return err;
  if (e.path !== dir && !e.path.startsWith(dir.endsWith('/') ? dir : `${dir}/`)) return err;
  const reason = e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/s, '');
  const Cls = hostErrorClass(err) ?? ImgError;
  return new Cls(`error from sender: ${e.syscall ?? 'read'} ${e.path}: ${reason}`, {
    hint: e.code === 'EACCES' || e.code === 'EPERM' ? 'make it readable by you, or leave it out of the build with .dockerignore' : 'leave it out of the build with .dockerignore if the build does not need it',
    cause: err,
  });
}

function localDir(localDirs: Record<string, string>, v: LocalSourceVertex): string {
  const dir = localDirs[v.source];
  if (!dir) {
    if (v.source === 'context') {
      throw new UsageError('this Dockerfile copies from the build context, but there is none (Dockerfile given on stdin)', {
        hint: 'pass a context directory: img build -f - DIR < Dockerfile',
      });
    }
    throw new NotFoundError(`build context "${v.source}" is not defined`, { hint: `pass it with --build-context ${v.source}=PATH` });
  }
  return dir;
}

// BuildKit's FollowPaths: a symlink on a named context path (the path itself or a
// parent directory) brings its target along, so `COPY link /x` finds what the link
// points to. A wildcard component follows the symlinks it matches (fsutil's
// FollowLinks reads the directory), so `COPY sub/l* /x/` copies what each matching
// link points to (BuildKit's testCopySymlinks); its other matches are sent as matched.
async function followLinks(dir: string, paths: string[]): Promise<string[]> {
  const out = new Set<string>();
  const visit = async (rel: string, depth: number): Promise<void> => {
    if (depth >= 40) return; // a loop: leave it to the copy to report
    const parts = rel.split('/').filter((p) => p && p !== '.');
    let cur = '';
    // `cur/name` is a symlink: send its target (and the rest of the path under it).
    const follow = async (name: string, rest: string[]): Promise<void> => {
      const link = cur ? `${cur}/${name}` : name;
      out.add(link); // the link itself, as fsutil's resolved set has it
      const target = await fsp.readlink(path.join(dir, link));
      // Resolved inside the context: absolute targets and ".." stop at its root.
      const resolved = path.posix.normalize(path.posix.join('/', target.startsWith('/') ? '' : cur, target, ...rest)).slice(1);
      if (resolved) out.add(resolved);
      await visit(resolved, depth + 1);
    };
    for (let i = 0; i < parts.length; i++) {
      if (hasWildcards(parts[i])) {
        const glob = compileGlob(parts[i]);
        const names = await fsp.readdir(path.join(dir, cur), { withFileTypes: true }).catch(() => []);
        for (const e of names) if (e.isSymbolicLink() && glob.matches(e.name)) await follow(e.name, parts.slice(i + 1));
        return;
      }
      const next = cur ? `${cur}/${parts[i]}` : parts[i];
      const st = await fsp.lstat(path.join(dir, next)).catch(() => null);
      if (!st) return;
      if (st.isSymbolicLink()) return follow(parts[i], parts.slice(i + 1));
      cur = next;
    }
  };
  for (const p of paths) await visit(p, 0);
  return [...out];
}
