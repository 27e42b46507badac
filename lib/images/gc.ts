// Garbage collection of the content store, and the store lock that makes it
// safe while other img processes share the state dir.
//
// LOCKING PROTOCOL (one lock: <state>/locks/store.lock)
// - Anything that writes blobs it will later name (pull, build, import) holds
//   withStoreLock(state, 'shared', …) from its first blob write until the image
//   record (or cache root, see below) naming those blobs is written. Many such
//   writers run at once.
// - collectGarbage() holds the lock 'exclusive' while it marks and sweeps, so
//   it never deletes a blob a concurrent writer is about to reference: it waits
//   for the writers to finish, and writers wait for it.
// - Never call collectGarbage() while this process holds the shared lock (it
//   would wait for itself). Readers (ls, save, push) take no lock: blobs are
//   immutable and named blobs are never collected.
//
// GC ROOTS
// - every image record's target (lib/images/store.ts), walked recursively
//   (index → manifests → config + layers; missing children are fine);
// - `extraRoots` passed by the caller;
// - build-cache roots: every `*.json` file under <state>/cache/roots/ holding
//   `{"digests": ["sha256:…", …]}`. The solver writes one file per cache
//   record (atomically: temp + rename, while holding the shared lock) and
//   deletes it when the record is pruned. Roots that are manifests or indexes
//   are walked like image targets; other blobs (layers, configs) are kept as is.
//   registerCacheRoot()/removeCacheRoot() below write and delete these files.
//
// Stray ingest files (crashed writers) older than an hour are removed too.
//
// Locks come from lib/host (flock through the native addon). When the addon
// does not load, a portable fallback based on exclusive-create lock files with
// pid liveness checks is used (see fileLock below).
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ContentStore } from '../content/store';
import { isDigest } from '../content/digest';
import { addonStatus, lockFile } from '../host/index';
import { ImgError, isErrno } from '../util/errors';
import { writeFileAtomic } from '../util/fsutil';
import { debug } from '../util/log';
import { ImageStore } from './store';
import type { Descriptor, Digest } from './types';
import { walk } from './walk';

export type LockMode = 'shared' | 'exclusive';
interface Lock {
  release(): Promise<void>;
}
// IMG_LOCK_FALLBACK=1 forces the lock-file fallback (tests exercise both paths).
function useFallback(): boolean {
  return process.env.IMG_LOCK_FALLBACK === '1';
}

export function storeLockPath(stateDir: string): string {
  return path.join(stateDir, 'locks', 'store.lock');
}

export async function withStoreLock<T>(stateDir: string, mode: LockMode, fn: () => Promise<T>): Promise<T> {
  const lockPath = storeLockPath(stateDir);
  await fsp.mkdir(path.dirname(lockPath), { recursive: true });
  let lock: Lock;
  if (useFallback() || !addonStatus().loaded) {
    // Without the addon there is no flock; every img process on this host falls back alike.
    debug('store lock: native addon unavailable; using lock-file fallback');
    lock = await fileLock(lockPath, mode);
  } else {
    lock = await lockFile(lockPath, mode, { wait: true });
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

// Fallback reader/writer lock from plain files, for hosts without the addon.
// Exclusive: create <lock>.exclusive with O_EXCL, then wait until no live
// <lock>.shared.* remains. Shared: create <lock>.shared.<pid>.<rand>, then if
// the exclusive file exists, remove ours and wait. Each side writes before it
// reads, so at least one of two racing processes sees the other. Files of dead
// processes (pid no longer alive) are removed.
async function fileLock(lockPath: string, mode: LockMode): Promise<Lock> {
  const dir = path.dirname(lockPath);
  const base = path.basename(lockPath);
  const exclusive = `${lockPath}.exclusive`;
  const me = String(process.pid);
  if (mode === 'exclusive') {
    for (;;) {
      try {
        await fsp.writeFile(exclusive, me, { flag: 'wx' });
        break;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        await removeIfDead(exclusive);
        await sleep(50);
      }
    }
    for (;;) {
      const names = (await fsp.readdir(dir)).filter((n) => n.startsWith(`${base}.shared.`));
      let live = 0;
      for (const n of names) if (!(await removeIfDead(path.join(dir, n)))) live++;
      if (live === 0) break;
      await sleep(50);
    }
    return { release: () => fsp.rm(exclusive, { force: true }) };
  }
  const mine = `${lockPath}.shared.${me}.${randomBytes(4).toString('hex')}`;
  for (;;) {
    if (await exists(exclusive)) {
      await removeIfDead(exclusive);
      await sleep(50);
      continue;
    }
    await fsp.writeFile(mine, me);
    if (!(await exists(exclusive))) break;
    await fsp.rm(mine, { force: true });
    await sleep(50);
  }
  return { release: () => fsp.rm(mine, { force: true }) };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

// Returns true when the lock file was stale (its pid is gone) and was removed.
async function removeIfDead(file: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number((await fsp.readFile(file, 'utf8')).trim());
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true;
    throw err;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false; // being written right now
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    if (isErrno(err, 'EPERM')) return false;
    await fsp.rm(file, { force: true });
    return true;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function cacheRootFile(stateDir: string, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) throw new Error(`invalid cache root id "${id}"`);
  return path.join(stateDir, 'cache', 'roots', `${id}.json`);
}

// Register blobs the build cache still needs (call while holding the shared lock,
// right after writing them). `id` is the cache record's key (file-name safe).
export async function registerCacheRoot(stateDir: string, id: string, digests: Digest[]): Promise<void> {
  await writeFileAtomic(cacheRootFile(stateDir, id), JSON.stringify({ digests }) + '\n');
}

export async function removeCacheRoot(stateDir: string, id: string): Promise<void> {
  await fsp.rm(cacheRootFile(stateDir, id), { force: true });
}

// Digests registered by the build cache (see GC ROOTS above).
export async function cacheRoots(stateDir: string): Promise<Digest[]> {
  const dir = path.join(stateDir, 'cache', 'roots');
  const out: Digest[] = [];
  const visitDir = async (d: string): Promise<void> => {
    let ents: import('node:fs').Dirent[];
    try {
      ents = await fsp.readdir(d, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await visitDir(p);
      else if (e.name.endsWith('.json')) {
        try {
          const doc = JSON.parse(await fsp.readFile(p, 'utf8')) as { digests?: unknown };
          if (Array.isArray(doc.digests)) for (const x of doc.digests) if (typeof x === 'string' && isDigest(x)) out.push(x);
        } catch (err) {
          // A root file being replaced or half-written by a crashed process: keep going,
          // but never sweep on a partial view of a readable-but-corrupt record.
          if (!isErrno(err, 'ENOENT')) debug(`gc: ignoring unreadable cache root ${p}: ${(err as Error).message}`);
        }
      }
    }
  };
  await visitDir(dir);
  return out;
}

// Descriptor for a bare digest root: media type unknown, so walk() sniffs small JSON blobs.
async function rootDescriptor(store: ContentStore, digest: Digest): Promise<Descriptor> {
  const st = await store.stat(digest);
  return { mediaType: '', digest, size: st?.size ?? 0 };
}

export async function collectGarbage(
  stateDir: string,
  extraRoots: Digest[] = [],
): Promise<{ removed: Digest[]; reclaimedBytes: number }> {
  const content = new ContentStore(stateDir);
  const images = new ImageStore(stateDir);
  return withStoreLock(stateDir, 'exclusive', async () => {
    const roots: Descriptor[] = (await images.list()).map((r) => r.target);
    for (const d of [...extraRoots, ...(await cacheRoots(stateDir))]) roots.push(await rootDescriptor(content, d));
    let marked: Map<Digest, Descriptor>;
    try {
      marked = await walk(content, roots, undefined, { strict: true });
    } catch (err) {
      // Sweeping on a partial mark could delete layers a corrupt manifest still names.
      throw new ImgError(`garbage collection stopped, nothing was deleted: ${(err as Error).message}`, {
        hint: (err as ImgError).hint ?? 'fix or remove the damaged image, then retry',
        cause: err,
      });
    }
    const removed: Digest[] = [];
    let reclaimedBytes = 0;
    for await (const blob of content.list()) {
      if (marked.has(blob.digest)) continue;
      await content.delete(blob.digest);
      removed.push(blob.digest);
      reclaimedBytes += blob.size;
    }
    await cleanIngest(content.ingestDir);
    debug(`gc: ${marked.size} reachable, removed ${removed.length} blobs (${reclaimedBytes} bytes)`);
    return { removed, reclaimedBytes };
  });
}

const STALE_INGEST_MS = 60 * 60 * 1000;

// Removes ingest files (partial writes) not touched for `olderThanMs`; for `img prune`.
// Returns the bytes freed. Run it under the exclusive lock to also catch young
// leftovers: live writers hold the shared lock while their ingest files exist.
export async function pruneIngest(stateDir: string, olderThanMs = 0): Promise<number> {
  return withStoreLock(stateDir, 'exclusive', () => cleanIngest(new ContentStore(stateDir).ingestDir, olderThanMs));
}

async function cleanIngest(dir: string, olderThanMs = STALE_INGEST_MS): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  const cutoff = Date.now() - olderThanMs;
  let freed = 0;
  for (const n of names) {
    const p = path.join(dir, n);
    try {
      const st = await fsp.stat(p);
      if (st.mtimeMs <= cutoff) {
        await fsp.rm(p, { recursive: true, force: true });
        freed += st.size;
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  return freed;
}
