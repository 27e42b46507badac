// Leftovers of img processes that died (crash, SIGKILL, power loss) mid-way:
// what they would have cleaned up themselves. Live processes clean up their own
// (snapshot/cleanup.ts undoes mounts and containers on signals), so everything
// here is judged by age: an entry untouched for an hour belongs to nobody.
//
//   ingest/<rand>                      partial blob writes (pulls, builds)
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
import { isErrno } from '../util/errors';
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

// Partial writes in ingest/ older than an hour. The GC calls it under the
// exclusive store lock, when no writer can be mid-way.
export function removeStaleIngest(ingestDir: string, olderThanMs = STALE_MS): Promise<number> {
  return removeOlderThan(ingestDir, olderThanMs);
}

// Removes ingest files (partial writes) not touched for `olderThanMs`; returns
// the bytes freed. The exclusive lock makes even young leftovers safe to take:
// live writers hold the shared lock while their ingest files exist.
export async function pruneIngest(stateDir: string, olderThanMs = 0): Promise<number> {
  return withStoreLock(stateDir, 'exclusive', () => removeStaleIngest(new ContentStore(stateDir).ingestDir, olderThanMs));
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
