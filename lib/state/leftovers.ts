// Leftovers of img processes that died (crash, SIGKILL, power loss) mid-way:
// what they would have cleaned up themselves. Live processes clean up their own
// (snapshot/cleanup.ts undoes mounts and containers on signals). An ingest file
// is judged by its flock (its writer holds one: content/store.ts), so a dead
// process's partial download goes at the next GC; everything else by age: an
// entry untouched for an hour belongs to nobody.
//
//   ingest/<rand>                      partial blob writes (pulls, builds), flocked
//   tmp/<entry>                        downloads, secrets, extracted contexts
//   tmp/exec/<container id>/           runc bundles (one per RUN)
//   snapshots/tmp/probe-*              backend probes of `auto`
//   snapshots/<backend>/<id>/ without meta.json   half-made snapshots
//   snapshots/<backend>/trash/         snapshots being deleted (always removable)
//   snapshots/<backend>/mnt/<rand>/    mount points of merged views
//   snapshots/<backend>/tmp/           backend scratch
//   snapshots/<backend>/l/<short>      overlay short links whose snapshot is gone
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContentStore } from '../content/store';
import { removeTree, type BaseSnapshotter } from '../snapshot/base';
import { lockFile } from '../host/index';
import { isErrno, LockBusyError } from '../util/errors';
import { debug } from '../util/log';
import { withStoreLock } from './lock';

export const STALE_MS = 60 * 60 * 1000;

// Removes the entries of `dir` (but those named in `keep`) not modified for
// `maxAgeMs` (all with 0) and returns the bytes of the entries removed (their
// own size, not a tree walk). An entry that cannot go (EBUSY: a live mount
// point of another process) stays.
export async function removeOlderThan(dir: string, maxAgeMs: number, keep: ReadonlySet<string> = new Set()): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  const cutoff = Date.now() - maxAgeMs;
  let freed = 0;
  for (const n of names) {
    if (keep.has(n)) continue;
    const p = path.join(dir, n);
    try {
      const st = await fsp.lstat(p);
      if (st.mtimeMs > cutoff) continue;
      await removeTree(p);
      freed += st.size;
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EBUSY')) debug(`leftovers: leaving ${p}: ${(err as Error).message}`);
    }
  }
  return freed;
}

// By default every unlocked ingest file goes: a writer that finds its file taken
// between creating and locking it starts another (content/store.ts).
export const INGEST_GRACE_MS = 0;

export interface IngestEntry {
  name: string;
  size: number;
  // A live process holds it (is writing it); null: cannot tell (no flock here),
  // then its age decides.
  held: boolean | null;
  mtimeMs: number;
}

// Whether a live process holds the file's flock; null when flock is unavailable
// (no addon, a filesystem without locks).
async function holdsLock(p: string, mode: 'shared' | 'exclusive'): Promise<{ held: boolean | null; release(): Promise<void> }> {
  try {
    const lock = await lockFile(p, mode, { wait: false, create: false });
    return { held: false, release: () => lock.release() };
  } catch (err) {
    if (err instanceof LockBusyError) return { held: true, release: async () => undefined };
    if (isErrno(err, 'ENOENT')) throw err;
    debug(`leftovers: cannot lock ${p}: ${(err as Error).message}`);
    return { held: null, release: async () => undefined };
  }
}

// The partial writes in ingest/, and whether a live process holds each.
export async function ingestEntries(ingestDir: string): Promise<IngestEntry[]> {
  const out: IngestEntry[] = [];
  for (const name of await fsp.readdir(ingestDir).catch(() => [] as string[])) {
    const p = path.join(ingestDir, name);
    const st = await fsp.lstat(p).catch((err) => {
      if (isErrno(err, 'ENOENT')) return null; // committed or aborted meanwhile
      throw err;
    });
    if (!st) continue;
    let held: boolean | null = null;
    if (st.isFile()) {
      try {
        const probe = await holdsLock(p, 'shared');
        await probe.release();
        held = probe.held;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
    }
    out.push({ name, size: st.size, held, mtimeMs: st.mtimeMs });
  }
  return out;
}

export function reclaimableIngest(e: IngestEntry, graceMs = INGEST_GRACE_MS): boolean {
  return Date.now() - e.mtimeMs >= (e.held === null ? Math.max(graceMs, STALE_MS) : graceMs) && !e.held;
}

// Removes the partial writes no live process holds (older than `graceMs`) and
// returns them. An entry is removed while locked here, so a writer can never
// come back to it.
export async function reclaimIngest(ingestDir: string, graceMs = INGEST_GRACE_MS): Promise<IngestEntry[]> {
  const removed: IngestEntry[] = [];
  for (const e of await ingestEntries(ingestDir)) {
    if (!reclaimableIngest(e, graceMs)) continue;
    const p = path.join(ingestDir, e.name);
    let lock = null;
    try {
      if ((await fsp.lstat(p)).isFile()) lock = await holdsLock(p, 'exclusive');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      throw err;
    }
    if (lock?.held) continue; // its writer took it meanwhile
    try {
      await removeTree(p);
      removed.push(e);
    } finally {
      await lock?.release();
    }
  }
  return removed;
}

// Removes every partial write no live process holds (the GC does this on every
// collection); returns the bytes freed. `olderThanMs`: spare younger ones.
export async function pruneIngest(stateDir: string, olderThanMs = INGEST_GRACE_MS): Promise<number> {
  const removed = await withStoreLock(stateDir, 'exclusive', () => reclaimIngest(new ContentStore(stateDir).ingestDir, olderThanMs));
  return removed.reduce((a, e) => a + e.size, 0);
}

// The state dir's own scratch: tmp/ and snapshots/tmp/. tmp/exec/ is shared by
// every running container (one bundle each): its entries age, not the folder.
export async function removeStaleTmp(stateDir: string): Promise<void> {
  await removeOlderThan(path.join(stateDir, 'tmp', 'exec'), STALE_MS);
  await removeOlderThan(path.join(stateDir, 'tmp'), STALE_MS, new Set(['exec']));
  await removeOlderThan(path.join(stateDir, 'snapshots', 'tmp'), STALE_MS);
}

// One backend's leftovers: half-made snapshots, trash, stale mount points and
// scratch, and short links whose snapshot is gone.
export async function removeSnapshotLeftovers(sn: BaseSnapshotter): Promise<void> {
  for (const stray of await sn.strays()) {
    const st = await fsp.stat(sn.dirOf(stray)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_MS) await sn.removeIfIdle(stray);
  }
  await removeOlderThan(path.join(sn.root, 'trash'), 0);
  await removeOlderThan(path.join(sn.root, 'mnt'), STALE_MS);
  await removeOlderThan(path.join(sn.root, 'tmp'), STALE_MS);
  for (const n of await fsp.readdir(path.join(sn.root, 'l')).catch(() => [] as string[])) {
    const link = path.join(sn.root, 'l', n);
    const target = await fsp.readlink(link).catch(() => null);
    if (target && !(await fsp.stat(path.resolve(path.dirname(link), target)).catch(() => null))) await fsp.rm(link, { force: true });
  }
}
