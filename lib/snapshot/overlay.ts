// Overlay backends: kernel overlayfs (mounted inside our user namespace, with
// `userxattr` there) and fuse-overlayfs. Same layout: an active snapshot is an
// upper dir (fs/) + work dir over its committed parents' fs/ dirs; a committed
// snapshot is its fs/ dir. A kernel mount names the lower fs/ dirs themselves while
// the options fit the kernel's one page; a longer chain (and fuse-overlayfs) goes
// through the short links l/<short>, made the first time a mount needs them.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { copiedUpOnly, overlayChanges } from '../archive/diff';
import { lowerEntry, overlayFormat, type DiskFormat } from '../archive/overlay-format';
import { ContentError, HostError, ImgError, isErrno, UnsupportedError } from '../util/errors';
import { debug } from '../util/log';
import { BaseSnapshotter, type SnapshotMeta } from './base';
import { bindMount, mount } from './sys';
import { fsPath as F, toBytes } from '../util/bytenames';
import type { Change, Mounted, SnapshotBackend } from './types';

// The kernel copies mount data into one page.
const MAX_MOUNT_DATA = 4000;
// Kernel overlayfs stacks at most 500 lower layers.
const MAX_LOWERS = 500;

// Whether this process runs in a user namespace (then overlayfs needs userxattr,
// and whiteout/opaque markers use the user.overlay.* xattrs).
export function inUserNamespace(): boolean {
  try {
    const text = fs.readFileSync('/proc/self/uid_map', 'utf8').trim();
    return !/^0\s+0\s+4294967295$/.test(text);
  } catch {
    return false;
  }
}

export class OverlaySnapshotter extends BaseSnapshotter {
  override readonly independentLayers = true;
  readonly diskFormat: DiskFormat;

  constructor(stateDir: string, backend: Extract<SnapshotBackend, 'overlayfs' | 'fuse-overlayfs'>) {
    super(stateDir, backend);
    // Opened inside our user namespace, where the kernel's overlayfs is mounted with userxattr.
    this.diskFormat = overlayFormat(backend, inUserNamespace());
  }

  protected async initActive(dir: string, parent: SnapshotMeta | null, readonly: boolean): Promise<void> {
    const fsDir = path.join(dir, 'fs');
    // Independent round trips at once: a RUN waits for these before runc starts.
    const [, parentRoot] = await Promise.all([
      fsp.mkdir(fsDir, { mode: 0o755 }),
      parent ? fsp.stat(this.fsDir(parent.id)) : null,
      readonly ? null : fsp.mkdir(path.join(dir, 'work'), { mode: 0o700 }),
    ]);
    // The merged root takes the upper root's attributes: keep the parent's (the new
    // directory is ours, root's in our namespace, and its mode is mkdir's after umask).
    if (parentRoot) {
      const owned = parentRoot.uid === process.geteuid?.() && parentRoot.gid === process.getegid?.();
      await Promise.all([fsp.chmod(fsDir, parentRoot.mode & 0o7777), owned ? null : fsp.chown(fsDir, parentRoot.uid, parentRoot.gid)]);
    }
  }

  // Short links this process made or found (a link is removed only with its snapshot).
  private readonly linked = new Set<string>();

  // l/<short> → ../<id>/fs (made on first use; recreated when a crash lost it).
  private async ensureLink(meta: SnapshotMeta): Promise<string> {
    if (!meta.short) throw new ContentError(`snapshot ${meta.id} has no short link name`, { hint: 'run img prune and retry' });
    const link = path.join(this.root, 'l', meta.short);
    if (this.linked.has(link)) return link;
    try {
      await fsp.symlink(path.join('..', meta.id, 'fs'), link);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    this.linked.add(link);
    return link;
  }

  protected async mountMerged(meta: SnapshotMeta, chain: SnapshotMeta[]): Promise<Mounted> {
    const writable = meta.kind === 'active' && !meta.readonly;
    const lowerMetas = meta.kind === 'committed' ? chain : chain.slice(1);
    if (writable && lowerMetas.length === 0) {
      // Nothing to merge: the upper dir is the rootfs.
      return { rootfs: this.fsDir(meta.id), release: async () => {} };
    }
    if (lowerMetas.length > MAX_LOWERS) {
      throw new UnsupportedError(`snapshot ${meta.id} has ${lowerMetas.length} layers; overlayfs stacks at most ${MAX_LOWERS}`, {
        hint: 'squash the image, or use --backend native',
      });
    }
    const target = await this.mountPoint();
    try {
      if (!writable && lowerMetas.length === 1) {
        bindMount(this.fsDir(lowerMetas[0].id), target, true);
      } else if (this.backend === 'overlayfs') {
        await this.mountKernel(lowerMetas, writable ? meta.id : null, target);
      } else {
        await this.mountFuse(lowerMetas, writable ? meta.id : null, target);
      }
    } catch (err) {
      this.returnMountPoint(target);
      throw this.mountError(err, meta);
    }
    return this.trackedMount(target);
  }

  // The short links of `lowers`, made where missing.
  private async shortsOf(lowers: SnapshotMeta[]): Promise<string[]> {
    await Promise.all(lowers.map((m) => this.ensureLink(m)));
    return lowers.map((m) => m.short!);
  }

  private mountError(err: unknown, meta: SnapshotMeta): unknown {
    if (err instanceof ImgError) return err;
    const e = err as NodeJS.ErrnoException;
    return new HostError(`cannot mount snapshot ${meta.id} with ${this.backend}: ${e.message}`, {
      hint:
        this.backend === 'overlayfs'
          ? 'this kernel may not allow overlayfs in a user namespace (needs Linux ≥ 5.11); use --backend fuse-overlayfs or --backend native'
          : 'check that fuse-overlayfs is installed and /dev/fuse is usable, or use --backend native',
      cause: err,
    });
  }

  private async mountKernel(lowers: SnapshotMeta[], upperId: string | null, target: string): Promise<void> {
    const userx = inUserNamespace() ? ',userxattr' : '';
    const workDir = upperId ? path.join(this.dirOf(upperId), 'work') : '';
    const tail = upperId ? `,upperdir=${this.fsDir(upperId)},workdir=${workDir}` : '';
    if (upperId) {
      fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
      allowVolatileRemount(workDir, upperId);
    }
    const mountWith = (data: string) => {
      if (upperId) mountWritableOverlay(target, data, workDir);
      else mount('overlay', target, 'overlay', 1 /* MS_RDONLY */, data);
    };
    // The lower fs/ dirs by their own paths (':' in "sha256:…" escaped), when that fits.
    const direct = lowerdirOf(lowers.map((m) => this.fsDir(m.id)));
    if (direct !== null && `${direct}${tail}${userx}`.length <= MAX_MOUNT_DATA) return mountWith(`${direct}${tail}${userx}`);
    const shorts = await this.shortsOf(lowers);
    const abs = `lowerdir=${shorts.map((s) => path.join(this.root, 'l', s)).join(':')}${tail}${userx}`;
    if (abs.length <= MAX_MOUNT_DATA) return mountWith(abs);
    // Too long with absolute paths: mount(8) run with cwd = the backend root
    // resolves short relative paths (l/<short>) against its own cwd, which
    // a Node process cannot do for one syscall without changing its own cwd.
    const rel = `lowerdir=${shorts.map((s) => `l/${s}`).join(':')}${tail}${userx}`;
    if (rel.length > MAX_MOUNT_DATA) {
      throw new UnsupportedError(`too many layers (${shorts.length}) for one overlayfs mount`, {
        hint: 'squash the image, or use --backend native',
      });
    }
    debug(`overlayfs: ${shorts.length} lowers; mounting with relative paths from ${this.root}`);
    const run = (opts: string) => spawnSync('mount', ['-n', '-t', 'overlay', '-o', opts, 'overlay', target], { cwd: this.root, encoding: 'utf8' });
    if (upperId && volatileWorks !== false && run(`rw,${rel},volatile`).status === 0) {
      volatileMounts.add(workDir);
      return;
    }
    const r = run(`${upperId ? 'rw' : 'ro'},${rel}`);
    if (r.status !== 0) throw new Error((r.stderr || r.error?.message || 'mount failed').trim().split('\n')[0]);
  }

  private async mountFuse(lowerMetas: SnapshotMeta[], upperId: string | null, target: string): Promise<void> {
    const lowers = (await this.shortsOf(lowerMetas)).map((s) => path.join(this.root, 'l', s)).join(':');
    let opts = `lowerdir=${lowers}`;
    if (upperId) {
      await fsp.mkdir(path.join(this.dirOf(upperId), 'work'), { recursive: true, mode: 0o700 });
      opts += `,upperdir=${this.fsDir(upperId)},workdir=${path.join(this.dirOf(upperId), 'work')}`;
    }
    await checkFuse();
    // fuse-overlayfs daemonizes once the mount is up; its exit status says whether it worked.
    await new Promise<void>((resolve, reject) => {
      const child = spawn('fuse-overlayfs', ['-o', opts, target], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e) =>
        reject(
          isErrno(e, 'ENOENT')
            ? new HostError('fuse-overlayfs is not installed', { hint: 'install it (Debian: apt-get install fuse-overlayfs) or use --backend native' })
            : e,
        ),
      );
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fuse-overlayfs exited ${code}: ${err.trim()}`))));
    });
  }

  // The upper dir is the change set, minus what says nothing about the
  // parent: whiteouts of paths the parent does not have (fuse-overlayfs
  // whites out even upper-only entries it deletes, e.g. removed mount points),
  // opaque marks on directories the parent does not have, fuse-overlayfs's
  // own `.wh..opq` opaque markers, and directories copied up unchanged (a RUN
  // that made and removed /tmp/x, a mount point under /run): BuildKit's layer
  // has no entry for them unless something under them changed.
  protected async *changesOf(meta: SnapshotMeta, parent: SnapshotMeta | null): AsyncIterable<Change> {
    const upper = toBytes(this.fsDir(meta.id));
    const lowers = parent ? (await this.chain(parent.id)).map((m) => toBytes(this.fsDir(m.id))) : [];
    const inLowers = (rel: string) => lowerEntry(this.diskFormat, lowers, rel) !== null;
    for await (const c of overlayChanges(upper, this.diskFormat)) {
      if (c.kind === 'delete') {
        if (path.basename(c.path) === '.opq' && isFuseOpaqueMarker(path.join(upper, path.dirname(c.path), '.wh..opq'))) continue;
        if (!inLowers(c.path)) continue;
      } else if (c.opaque && c.path !== '/' && !inLowers(c.path)) {
        yield { path: c.path, kind: c.kind };
        continue;
      } else if (!c.opaque && c.path !== '/') {
        const up = fs.lstatSync(F(upper + c.path));
        const low = up.isDirectory() ? lowerEntry(this.diskFormat, lowers, c.path) : null;
        if (low && copiedUpOnly(this.diskFormat, low.host, upper + c.path, low.st, up)) continue;
      }
      yield c;
    }
  }
}

// `lowerdir=` naming `dirs`, or null when a path has a character the option would need
// escaped beyond ':' (overlayfs splits lowers at unescaped ':', options at ','), so
// the short links are used instead.
export function lowerdirOf(dirs: string[]): string | null {
  if (dirs.some((d) => /[,\\\s]/.test(d))) return null;
  return `lowerdir=${dirs.map((d) => d.replace(/:/g, '\\:')).join(':')}`;
}

// DURABILITY: a step's writable overlay is mounted `volatile` (Linux ≥ 5.10): without it
// every unmount of an overlay with an upper dir runs syncfs on the whole filesystem under
// it, writing back every process's dirty data there, not just the step's (≈1 s per GiB
// another build left in the page cache). Snapshots go through the page cache like every
// other snapshot write (unpack, COPY): they survive the process being killed, not a
// machine crash; see docs/architecture.md, "Durability".
// undefined: not tried yet; false: this kernel refused it (then plain mounts).
let volatileWorks: boolean | undefined;
// Work dirs this process mounted volatile: their marker may go before the next mount.
const volatileMounts = new Set<string>();

// Mounts a writable overlay (`data` names an upper and a work dir), volatile where the
// kernel has the option.
export function mountWritableOverlay(target: string, data: string, workDir: string): void {
  if (volatileWorks !== false) {
    try {
      mount('overlay', target, 'overlay', 0, `${data},volatile`);
      volatileWorks = true;
      volatileMounts.add(workDir);
      return;
    } catch (err) {
      if (volatileWorks === true || !isErrno(err, 'EINVAL')) throw err;
      volatileWorks = false;
      debug(`overlayfs: no volatile option on this kernel (${(err as Error).message}); unmounts will sync`);
    }
  }
  mount('overlay', target, 'overlay', 0, data);
}

// A volatile mount leaves work/work/incompat/volatile behind, and the kernel refuses to
// mount that work dir again until it is removed: it cannot know that the upper dir was not
// cut short by a crash. A work dir this process mounted is intact (the process is alive);
// one a dead process left is the active snapshot of a build that never committed it.
function allowVolatileRemount(workDir: string, id: string): void {
  const marker = path.join(workDir, 'work', 'incompat', 'volatile');
  if (!fs.existsSync(marker)) return;
  if (!volatileMounts.has(workDir)) {
    throw new ContentError(`snapshot ${id} was left half-written by an img process that stopped (its overlay was mounted volatile)`, {
      hint: 'run `img prune` to remove it, then build again',
    });
  }
  fs.rmSync(marker, { recursive: true, force: true });
}

function isFuseOpaqueMarker(p: string): boolean {
  try {
    fs.lstatSync(F(p));
    return true;
  } catch {
    return false;
  }
}

// /dev/fuse must open read-write for fuse-overlayfs to mount.
export async function checkFuse(): Promise<void> {
  try {
    const fh = await fsp.open('/dev/fuse', 'r+');
    await fh.close();
  } catch (err) {
    throw new HostError(`fuse-overlayfs needs /dev/fuse, which cannot be opened: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'make it usable (e.g. `sudo chmod 0666 /dev/fuse`, or run the container with --device /dev/fuse), or use --backend native or overlayfs',
      cause: err,
    });
  }
}

