// Backend selection. `auto` prefers overlayfs, then fuse-overlayfs, then
// native, deciding by actually mounting in this namespace (a kernel can list
// overlay in /proc/filesystems and still refuse it to a user namespace). The
// verdict is cached in <state>/snapshots/auto.json, keyed by kernel release
// and namespace kind, and for the user in ~/.cache/img/snapshotter-auto.json,
// keyed also by the filesystem under the state dir, so a new state dir on
// the same disk does not probe again: the probe's unmount syncs that whole
// filesystem (overlayfs syncs its upper layer's), 40 ms on a quiet host and
// several hundred on a busy one, on the way to a cold build's first step.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { isErrno, UsageError } from '../util/errors';
import { userCacheDir } from '../util/fsutil';
import { debug } from '../util/log';
import { randomId, removeTree, writeJsonAtomic, type BaseSnapshotter } from './base';
import { NativeSnapshotter } from './native';
import { OverlaySnapshotter, checkFuse, inUserNamespace, mountWritableOverlay } from './overlay';
import { umount } from './sys';
import type { SnapshotBackend, Snapshotter } from './types';

export const BACKENDS: SnapshotBackend[] = ['overlayfs', 'fuse-overlayfs', 'native'];

interface AutoCache {
  kernel: string;
  userns: boolean;
  backend: SnapshotBackend;
  reasons?: Record<string, string>;
}

export function newSnapshotter(stateDir: string, backend: SnapshotBackend): Snapshotter & BaseSnapshotter {
  switch (backend) {
    case 'native':
      return new NativeSnapshotter(stateDir);
    case 'overlayfs':
    case 'fuse-overlayfs':
      return new OverlaySnapshotter(stateDir, backend);
    default:
      throw new UsageError(`unknown snapshot backend "${backend as string}"`, { hint: `use one of: auto ${BACKENDS.join(' ')}` });
  }
}

export async function openBackend(stateDir: string, backend: 'auto' | SnapshotBackend): Promise<Snapshotter> {
  if (backend !== 'auto' && !BACKENDS.includes(backend)) {
    throw new UsageError(`unknown snapshot backend "${backend as string}"`, { hint: `use one of: auto ${BACKENDS.join(' ')}` });
  }
  const chosen = backend === 'auto' ? await detectBackend(stateDir) : backend;
  if (chosen === 'fuse-overlayfs') await checkFuse();
  return newSnapshotter(stateDir, chosen);
}

export async function detectBackend(stateDir: string): Promise<SnapshotBackend> {
  const cacheFile = path.join(stateDir, 'snapshots', 'auto.json');
  const kernel = os.release();
  const userns = inUserNamespace();
  try {
    const cached = JSON.parse(await fsp.readFile(cacheFile, 'utf8')) as AutoCache;
    if (cached.kernel === kernel && cached.userns === userns && BACKENDS.includes(cached.backend)) {
      debug(`snapshotter auto: ${cached.backend} (cached in ${cacheFile})`);
      return cached.backend;
    }
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
  }
  const hostKey = await filesystemKey(stateDir, kernel, userns);
  const known = hostKey ? await readHostVerdicts().then((v) => v[hostKey]) : undefined;
  if (known && BACKENDS.includes(known.backend)) {
    debug(`snapshotter auto: ${known.backend} (this filesystem's verdict, cached in ${hostVerdictsFile()})`);
    await fsp.mkdir(path.dirname(cacheFile), { recursive: true });
    await writeJsonAtomic(cacheFile, known);
    return known.backend;
  }
  const probeRoot = path.join(stateDir, 'snapshots', 'tmp', `probe-${randomId(10)}`);
  const reasons: Record<string, string> = {};
  let backend: SnapshotBackend = 'native';
  try {
    for (const candidate of ['overlayfs', 'fuse-overlayfs'] as const) {
      const why = await backendTrial(candidate, path.join(probeRoot, candidate), userns);
      if (why === null) {
        backend = candidate;
        break;
      }
      reasons[candidate] = why;
      debug(`snapshotter auto: ${candidate} unusable: ${why}`);
    }
  } finally {
    await removeTree(probeRoot).catch(() => undefined);
  }
  debug(`snapshotter auto: chose ${backend}`);
  const verdict: AutoCache = { kernel, userns, backend, reasons };
  await fsp.mkdir(path.dirname(cacheFile), { recursive: true });
  await writeJsonAtomic(cacheFile, verdict);
  if (hostKey) await rememberHostVerdict(hostKey, verdict);
  return backend;
}

// What decides the probe besides the kernel and the namespace: the filesystem
// the snapshots live on (its device and type: ext4, xfs, tmpfs, an overlay in a
// container), on this machine (a home on NFS is shared by hosts whose kernels may
// allow different things). undefined when the state dir cannot be examined (then
// no host cache).
async function filesystemKey(stateDir: string, kernel: string, userns: boolean): Promise<string | undefined> {
  try {
    const [st, sfs] = await Promise.all([fsp.stat(stateDir), fsp.statfs(stateDir)]);
    return `${os.hostname()} ${kernel} userns=${userns} dev=${st.dev} fstype=0x${sfs.type.toString(16)}`;
  } catch {
    return undefined;
  }
}

function hostVerdictsFile(): string {
  return path.join(userCacheDir(), 'snapshotter-auto.json');
}

async function readHostVerdicts(): Promise<Record<string, AutoCache>> {
  try {
    const v = JSON.parse(await fsp.readFile(hostVerdictsFile(), 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, AutoCache>) : {};
  } catch {
    return {}; // none yet, or unreadable: probe
  }
}

// Best effort: a read-only or missing home only means the next state dir probes again.
// Concurrent writers may drop each other's entry; it is probed again next time.
async function rememberHostVerdict(key: string, verdict: AutoCache): Promise<void> {
  try {
    const all = await readHostVerdicts();
    all[key] = verdict;
    await fsp.mkdir(userCacheDir(), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(hostVerdictsFile(), all);
  } catch (err) {
    debug(`snapshotter auto: cannot remember the verdict in ${hostVerdictsFile()}: ${String(err)}`);
  }
}

// Mounts a two-lower overlay in `dir` (on the filesystem under test), writes
// through it (copy-up + whiteout), unmounts. Resolves to null when that
// worked, else the reason. `img doctor` runs the same trial.
export async function backendTrial(backend: 'overlayfs' | 'fuse-overlayfs', dir: string, userns: boolean): Promise<string | null> {
  const d = (n: string) => path.join(dir, n);
  await Promise.all(['l1', 'l2', 'u', 'w', 'm'].map((n) => fsp.mkdir(d(n), { recursive: true })));
  await fsp.writeFile(path.join(d('l1'), 'a'), 'a');
  await fsp.writeFile(path.join(d('l2'), 'b'), 'b');
  const opts = `lowerdir=${d('l2')}:${d('l1')},upperdir=${d('u')},workdir=${d('w')}`;
  let mounted = false;
  try {
    if (backend === 'overlayfs') {
      if (!fs.readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n')) return 'overlay is not in /proc/filesystems';
      mountWritableOverlay(d('m'), opts + (userns ? ',userxattr' : ''), d('w'));
    } else {
      try {
        await checkFuse();
      } catch (err) {
        return (err as Error).message;
      }
      await new Promise<void>((resolve, reject) => {
        const child = spawn('fuse-overlayfs', ['-o', opts, d('m')], { stdio: ['ignore', 'ignore', 'pipe'] });
        let e = '';
        child.stderr.on('data', (x: Buffer) => (e += x.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(e.trim() || `exit ${code}`))));
      });
    }
    mounted = true;
    await fsp.appendFile(path.join(d('m'), 'a'), 'x'); // copy-up
    await fsp.unlink(path.join(d('m'), 'b')); // whiteout
    const st = await fsp.lstat(path.join(d('u'), 'b'));
    if (!st.isCharacterDevice()) return 'whiteouts are not character devices';
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    if (mounted) {
      try {
        umount(d('m'));
      } catch {
        try {
          umount(d('m'), true);
        } catch {
          /* gone */
        }
      }
    }
  }
}
