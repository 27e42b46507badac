// The store lock: what makes garbage collection safe while other img processes
// share the state dir.
//
// LOCKING PROTOCOL (one lock: <state>/locks/store.lock)
// - Anything that writes blobs it will later name (pull, build, import) holds
//   withStoreLock(state, 'shared', …) from its first blob write until the image
//   record (or cache root, see gc.ts) naming those blobs is written. Many such
//   writers run at once.
// - collectGarbage() (gc.ts) holds the lock 'exclusive' while it marks and
//   sweeps, so it never deletes a blob a concurrent writer is about to
//   reference: it waits for the writers to finish, and writers wait for it.
// - Never call collectGarbage() while this process holds the shared lock (it
//   would wait for itself). Readers (ls, save, push) take no lock: blobs are
//   immutable and named blobs are never collected.
//
// Locks come from lib/host (flock through the native addon). When the addon
// does not load, a portable fallback based on exclusive-create lock files with
// pid liveness checks is used (see fileLock below).
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { addonStatus, lockFile } from '../host/index';
import { isErrno } from '../util/errors';
import { debug } from '../util/log';

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
