// Backend selection. `auto` prefers overlayfs, then fuse-overlayfs, then
// native, deciding by actually mounting in this namespace (a kernel can list
// overlay in /proc/filesystems and still refuse it to a user namespace). The
// verdict is cached in <state>/snapshots/auto.json, keyed by kernel release
// and namespace kind, so only the first command on a host pays for the probe.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { isErrno, UsageError } from '../util/errors';
import { debug } from '../util/log';
import { randomId, removeTree, writeJsonAtomic, type BaseSnapshotter } from './base';
import { NativeSnapshotter } from './native';
import { OverlaySnapshotter, checkFuse, inUserNamespace } from './overlay';
import { mount, umount } from './sys';
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
  await fsp.mkdir(path.dirname(cacheFile), { recursive: true });
  await writeJsonAtomic(cacheFile, { kernel, userns, backend, reasons } satisfies AutoCache);
  return backend;
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
      mount('overlay', d('m'), 'overlay', 0, opts + (userns ? ',userxattr' : ''));
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
