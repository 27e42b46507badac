// Small filesystem helpers for state that other processes read concurrently.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskFullError, hostErrorClass, HostError, isErrno, UsageError } from './errors';
import { debug } from './log';
import { bytesSize } from './units';

// `mkdir -p` for paths users give (the state dir, output destinations, --iidfile's
// parent): node's own recursive mkdir spins at 100% CPU forever where mkdir answers
// ENOENT although the parent exists (/proc, /sys: kernel filesystems that hold no new
// directories), so this one walks up itself, and its errors name the path, what it
// was for (`what`: "state directory (--state)") and what to do. Existing directories
// (and symlinks to them) are fine; a concurrent creator is too.
export async function makeDirs(dir: string, what: string, mode?: number): Promise<void> {
  const abs = path.resolve(dir);
  const attempt = async (): Promise<'made' | 'exists' | 'no-parent'> => {
    try {
      await fsp.mkdir(abs, { mode });
      return 'made';
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return 'exists';
      if (isErrno(err, 'ENOENT')) return 'no-parent';
      throw dirError(abs, what, err);
    }
  };
  let got = await attempt();
  if (got === 'no-parent') {
    const parent = path.dirname(abs);
    if (parent === abs) throw dirError(abs, what, new Error('the root directory is missing'));
    await makeDirs(parent, what, mode);
    got = await attempt();
    if (got === 'no-parent') {
      throw new UsageError(`cannot create ${what} ${abs}: ${parent} does not hold new directories`, {
        hint: 'it is on a kernel filesystem (such as /proc or /sys); choose a path on a disk',
      });
    }
  }
  if (got === 'exists') {
    let st;
    try {
      st = await fsp.stat(abs);
    } catch (err) {
      throw dirError(abs, what, err); // a dangling symlink, a loop
    }
    if (!st.isDirectory()) throw new UsageError(`${what} ${abs} exists and is not a directory`, { hint: 'choose another path, or remove that file' });
  }
}

// What a failed system call on a user's path means, in words (no errno codes,
// no temporary file names).
export function errnoReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'EISDIR':
      return 'it is a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENOENT':
      return 'a directory on the path does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return (err as Error).message ?? String(err);
  }
}

function dirError(dir: string, what: string, err: unknown): Error {
  const reason = isErrno(err, 'ENOENT') ? 'a symbolic link on the path points nowhere' : errnoReason(err);
  const Cls = hostErrorClass(err);
  if (Cls) {
    return new Cls(`cannot create ${what} ${dir}: ${reason}`, {
      hint: Cls === HostError ? 'choose a directory you may write to, or fix its permissions' : 'free space on that disk, or choose another one',
      cause: err,
    });
  }
  return new UsageError(`cannot create ${what} ${dir}: ${reason}`, { hint: 'choose another path', cause: err });
}

// The user's cache directory for img's host facts (code cache, unpacked SEA
// assets, the snapshotter verdict): $XDG_CACHE_HOME/img or ~/.cache/img, else a
// per-user directory under the temp dir. Nothing in it is state: losing it costs time only.
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.XDG_CACHE_HOME || (env.HOME ? path.join(env.HOME, '.cache') : '');
  return root ? path.join(root, 'img') : path.join(os.tmpdir(), `img-${process.getuid?.() ?? 0}`);
}

export interface AtomicWriteOptions {
  mode?: number; // 0o644 unless given
  // fsync the file before the rename and its directory after, so the new content
  // survives a machine crash: for what users stored (image names). Records of
  // rebuildable state skip both (docs/architecture.md, "Durability").
  durable?: boolean;
  // What the file is, for a full disk's message ("the image name busybox:latest");
  // "the record <file name>" unless given.
  what?: string;
}

// Write temp + rename: readers see the old or the new file, never a torn one. The
// parent directory is made only when the first open says it is missing.
export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  try {
    await writeFileAtomicNow(file, data, opts);
  } catch (err) {
    // A full disk names itself and what to do, as a blob's does (not a bare ENOSPC).
    if (hostErrorClass(err) !== DiskFullError || err instanceof DiskFullError) throw err;
    throw diskFullError(path.dirname(file), opts.what ?? `the record ${path.basename(file)}`, await diskSpace(path.dirname(file)), err);
  }
}

async function writeFileAtomicNow(file: string, data: string | Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const open = () => fsp.open(tmp, 'wx', opts.mode ?? 0o644);
  let fh: fsp.FileHandle;
  try {
    fh = await open();
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await makeDirs(path.dirname(file), 'directory');
    fh = await open();
  }
  try {
    await fh.writeFile(data);
    if (opts.durable) await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  if (opts.durable) await syncDir(path.dirname(file));
}

// A JSON record of rebuildable state (snapshot metadata, cache records, layer memos):
// atomic, not durable; readers take a missing or unreadable one for absent (readJsonRecord).
export async function writeJsonAtomic(file: string, value: unknown, what?: string): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', { what });
}

// fsync a directory so a rename into it survives a crash; some filesystems refuse, which is fine.
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close();
  }
}

// readFile that returns null for a missing file.
export async function readFileIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

// A JSON record written by writeJsonAtomic: null when it is missing or not JSON
// (a record from an older img, a disk that lost data): the caller recomputes it.
export async function readJsonRecord<T>(file: string): Promise<T | null> {
  const data = await readFileIfExists(file);
  if (data === null) return null;
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch {
    debug(`ignoring unreadable ${file}`);
    return null;
  }
}

// Below this much free space (or with no inode left) a filesystem counts as full:
// a failed write leaves a little behind (a block, the tail of a file).
const FULL_BELOW = 1 << 20;

export interface DiskSpace {
  free: number; // bytes an unprivileged writer may still use
  total: number;
  full: boolean;
}

// The space of the filesystem holding `p`, or null when it cannot be asked.
export async function diskSpace(p: string): Promise<DiskSpace | null> {
  try {
    const st = await fsp.statfs(p);
    const free = st.bavail * st.bsize;
    // Filesystems without an inode count (btrfs, some FUSE) say files = 0.
    return { free, total: st.blocks * st.bsize, full: free < FULL_BELOW || (st.files > 0 && st.ffree === 0) };
  } catch (err) {
    debug(`statfs ${p}: ${(err as Error).message}`);
    return null;
  }
}

// A full disk as users should meet it: where, how much is left, what to do.
// `what` says what was being written ("the snapshot of RUN …", "blob …").
export function diskFullError(p: string, what: string, space: DiskSpace | null, cause?: unknown): DiskFullError {
  const left = space ? `: ${bytesSize(space.free)} free of ${bytesSize(space.total)}` : '';
  return new DiskFullError(`no space left for ${what} on the filesystem of ${p}${left}`, {
    hint: 'free space on that disk, run img prune (removes what no image needs), or use a --state dir on a larger disk',
    cause,
  });
}
