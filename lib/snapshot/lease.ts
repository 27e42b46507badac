// Snapshot leases: a process that uses a snapshot (prepared it, mounted it,
// committed it, unpacked onto it) holds a shared flock on
// <state>/locks/snapshots/<backend>/<id>.lock until it exits or lets go.
// prune/remove take the exclusive lock without waiting and skip busy ones;
// du marks busy ones with "*". After taking a lock we check the file we locked
// is still the one at the path (prune unlinks lock files of removed snapshots).
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { flockSoon, loadAddon } from '../host/index';
import { isErrno } from '../util/errors';

interface Held {
  fh: fsp.FileHandle;
  refs: number;
}

// One shared lock per lock file per process (flocks on two open files of one
// process exclude each other, so a second open would block on ourselves).
const held = new Map<string, Held>();

export function lockDir(stateDir: string, backend: string): string {
  return path.join(stateDir, 'locks', 'snapshots', backend);
}

export function leaseFile(stateDir: string, backend: string, id: string): string {
  return path.join(lockDir(stateDir, backend), `${id}.lock`);
}

async function sameFile(fh: fsp.FileHandle, file: string): Promise<boolean> {
  try {
    const [a, b] = await Promise.all([fh.stat(), fsp.stat(file)]);
    return a.ino === b.ino && a.dev === b.dev;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

// Opens and flocks `file`; null when `wait` is false and someone else holds a
// conflicting lock.
async function lockPath(file: string, mode: 'shared' | 'exclusive', wait: boolean): Promise<fsp.FileHandle | null> {
  let madeDir = false;
  for (;;) {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'a+', 0o644);
    } catch (err) {
      // The lock directory exists but for a store's first lease: make it only then.
      if (!isErrno(err, 'ENOENT') || madeDir) throw err;
      await fsp.mkdir(path.dirname(file), { recursive: true });
      madeDir = true;
      continue;
    }
    let ok: boolean;
    try {
      ok = await flockSoon(loadAddon(), fh.fd, mode, wait);
    } catch (err) {
      await fh.close();
      if (isErrno(err, 'EWOULDBLOCK') || isErrno(err, 'EAGAIN')) return null;
      throw err;
    }
    if (!ok) {
      await fh.close();
      return null;
    }
    if (await sameFile(fh, file)) return fh;
    await fh.close(); // unlinked under us by a prune: lock the new file
  }
}

// Takes (or re-references) this process's shared lease on a snapshot.
export async function acquireLease(stateDir: string, backend: string, id: string): Promise<void> {
  const file = leaseFile(stateDir, backend, id);
  const h = held.get(file);
  if (h) {
    h.refs++;
    return;
  }
  const fh = await lockPath(file, 'shared', true);
  if (!fh) throw new Error(`unexpected: waiting lock on ${file} returned busy`);
  const again = held.get(file); // a concurrent acquire in this process won the race
  if (again) {
    again.refs++;
    await fh.close();
    return;
  }
  held.set(file, { fh, refs: 1 });
}

// Whether this process leases the snapshot already (then no other process can remove it).
export function holdsLease(stateDir: string, backend: string, id: string): boolean {
  return held.has(leaseFile(stateDir, backend, id));
}

export async function releaseLease(stateDir: string, backend: string, id: string, all = false): Promise<void> {
  const file = leaseFile(stateDir, backend, id);
  const h = held.get(file);
  if (!h) return;
  h.refs = all ? 0 : h.refs - 1;
  if (h.refs > 0) return;
  held.delete(file);
  await h.fh.close();
}

// Gives the lock file of snapshot `from` (leased by this process) the name of `to` as well,
// before a commit renames `from` to `to`, and then leases `to`: both names are one inode,
// on which this process holds a shared flock already, so the new lease costs no new file
// (creating an inode is the slowest file operation a step makes on a busy ext4). When
// `to` has a lock file already (another process, or an older lease), it is leased as
// usual. `from`'s name stays until unlinkLease: until the rename, `from` still exists.
export async function leaseAs(stateDir: string, backend: string, from: string, to: string): Promise<void> {
  const src = leaseFile(stateDir, backend, from);
  if (held.has(src) && !held.has(leaseFile(stateDir, backend, to))) {
    try {
      await fsp.link(src, leaseFile(stateDir, backend, to));
    } catch (err) {
      if (!isErrno(err, 'EEXIST') && !isErrno(err, 'ENOENT')) throw err;
    }
  }
  await acquireLease(stateDir, backend, to);
}

// Drops this process's lease on a snapshot that no longer exists under that id (it was
// renamed by a commit) and removes the lock file's name.
export async function unlinkLease(stateDir: string, backend: string, id: string): Promise<void> {
  const file = leaseFile(stateDir, backend, id);
  await Promise.all([releaseLease(stateDir, backend, id, true), fsp.rm(file, { force: true })]);
}

// Releases every lease this process holds (end of a command).
export async function releaseAllLeases(): Promise<void> {
  const all = [...held.values()];
  held.clear();
  await Promise.all(all.map((h) => h.fh.close()));
}

// Whether some other process leases the snapshot (du's "*").
export async function isBusy(stateDir: string, backend: string, id: string): Promise<boolean> {
  const file = leaseFile(stateDir, backend, id);
  if (held.has(file)) return true;
  try {
    await fsp.access(file);
  } catch {
    return false; // never leased
  }
  const fh = await lockPath(file, 'exclusive', false);
  if (!fh) return true;
  await fh.close();
  return false;
}

// Runs `fn` holding the exclusive lock of an idle snapshot; resolves to
// false (without running fn) when another process leases it. The lock file
// is unlinked before the lock is dropped when `unlinkAfter` is set.
export async function withExclusive(
  stateDir: string,
  backend: string,
  id: string,
  fn: () => Promise<void>,
  unlinkAfter = true,
): Promise<boolean> {
  const file = leaseFile(stateDir, backend, id);
  if (held.has(file)) return false; // this process uses it
  const fh = await lockPath(file, 'exclusive', false);
  if (!fh) return false;
  try {
    await fn();
    if (unlinkAfter) await fsp.rm(file, { force: true });
  } finally {
    await fh.close();
  }
  return true;
}

// A waiting exclusive lock for one key (unpack of one chainID): concurrent
// unpackers of the same layer take turns; the second finds it committed.
export async function lockKey(stateDir: string, backend: string, key: string): Promise<{ release(): Promise<void> }> {
  const safe = key.replace(/[^A-Za-z0-9._-]/g, '_');
  const file = path.join(lockDir(stateDir, backend), 'keys', `${safe}.lock`);
  const fh = await lockPath(file, 'exclusive', true);
  if (!fh) throw new Error(`unexpected: waiting lock on ${file} returned busy`);
  let done = false;
  return {
    async release() {
      if (done) return;
      done = true;
      await fh.close();
    },
  };
}
