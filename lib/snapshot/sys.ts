// mount/umount/tree copy for the snapshotters, through the native addon
// (lib/host). When the loaded addon predates a function, the util-linux /
// coreutils program does the same job (slower, but correct), so a missing
// addon function degrades speed, not behaviour.
import { spawn, spawnSync } from 'node:child_process';
import { loadAddon, MS, MNT_DETACH, type NativeAddon } from '../host/index';
import { debug } from '../util/log';

function addon(): Partial<NativeAddon> | null {
  try {
    return loadAddon();
  } catch {
    return null;
  }
}

function errnoError(message: string, code: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

function runTool(argv: string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) {
    const msg = (r.stderr || r.error?.message || 'failed').trim().split('\n')[0];
    throw errnoError(`${argv.join(' ')}: ${msg}`, /ermission|not permitted/i.test(msg) ? 'EPERM' : /busy/i.test(msg) ? 'EBUSY' : 'EIO');
  }
}

// mount(2). `data` is the comma-separated option string (fs specific).
export function mount(source: string, target: string, fstype: string, flags: number, data = ''): void {
  const a = addon();
  if (a && typeof a.mount === 'function') {
    a.mount(source, target, fstype, flags, data);
    return;
  }
  const opts: string[] = [];
  if (flags & MS.BIND) opts.push(flags & MS.REC ? 'rbind' : 'bind');
  if (flags & MS.REMOUNT) opts.push('remount');
  if (flags & MS.RDONLY) opts.push('ro');
  if (flags & MS.NOSUID) opts.push('nosuid');
  if (flags & MS.NODEV) opts.push('nodev');
  if (data) opts.push(data);
  const argv = ['mount', '-n'];
  if (fstype && !(flags & MS.BIND)) argv.push('-t', fstype);
  if (opts.length) argv.push('-o', opts.join(','));
  if (flags & MS.REMOUNT) argv.push(target);
  else argv.push(source, target);
  runTool(argv);
}

export function umount(target: string, detach = false): void {
  const a = addon();
  if (a && typeof a.umount === 'function') {
    a.umount(target, detach ? MNT_DETACH : 0);
    return;
  }
  runTool(detach ? ['umount', '-n', '-l', target] : ['umount', '-n', target]);
}

// A bind mount; read-only needs a second (remount) call. In a user namespace
// the remount must keep flags the kernel locked on the source mount, so on
// EPERM it retries with nosuid/nodev added.
export function bindMount(source: string, target: string, readonly: boolean, recursive = false): void {
  mount(source, target, '', MS.BIND | (recursive ? MS.REC : 0));
  if (!readonly) return;
  const base = MS.REMOUNT | MS.BIND | MS.RDONLY;
  try {
    mount('', target, '', base);
  } catch (err) {
    try {
      mount('', target, '', base | MS.NOSUID | MS.NODEV);
    } catch {
      umount(target, true);
      throw err;
    }
  }
}

// Copies a whole tree preserving owners, modes, times, xattrs, hard links and
// special files. `dst` must not exist. Paths may be Buffers of raw bytes (util/bytenames.ts).
export async function copyTree(src: string | Buffer, dst: string | Buffer): Promise<{ files: number; bytes: number }> {
  const a = addon();
  if (a && typeof a.copyTree === 'function') return a.copyTree(src, dst);
  debug(`copyTree: addon has no copyTree; using cp -a for ${src.toString()}`);
  await new Promise<void>((resolve, reject) => {
    // argv is text: names that are not UTF-8 need the addon
    const child = spawn('cp', ['-a', '--reflink=auto', '--', src.toString(), dst.toString()], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(errnoError(`cp -a ${src.toString()} ${dst.toString()}: ${err.trim()}`, 'EIO'))));
  });
  return { files: -1, bytes: -1 };
}
