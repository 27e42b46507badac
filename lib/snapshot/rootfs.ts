// `img unpack`: an image's merged rootfs copied into a plain directory the
// caller owns. Runs inside our user namespace: every file is created by
// namespace root (= the caller on the host), so owners map to the caller,
// while modes (setuid bits included), links and times are preserved.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { mknod } from '../archive/sys';
import { ContentStore } from '../content/store';
import { loadAddon } from '../host/index';
import { formatPlatform, hostPlatform, matchPlatform, selectManifest } from '../images/platform';
import { normalizeName } from '../images/reference';
import { ImageStore } from '../images/store';
import { isManifestMediaType, type Descriptor, type ImageConfig, type Manifest, type Platform } from '../images/types';
import { localManifests } from '../images/walk';
import { isErrno, NotFoundError, UsageError } from '../util/errors';
import { makeDirs } from '../util/fsutil';
import { debug, warn } from '../util/log';
import type { Snapshotter } from './types';
import { unpackLayers, type UnpackProgress } from './unpack';

export interface ResolvedImage {
  name: string;
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

// The manifest (and config) of a stored image for `want` (unpack --platform) or the
// host, or null when no such name — or, with `want`, when that platform is not
// stored (a pull of it comes next). A stored single-platform image for another
// platform than `want` is a NotFoundError.
export async function resolveStoredImage(stateDir: string, input: string, want?: Platform): Promise<ResolvedImage | null> {
  const name = normalizeName(input);
  const rec = await new ImageStore(stateDir).get(name);
  if (!rec) return null;
  const content = new ContentStore(stateDir);
  let desc: Descriptor;
  if (isManifestMediaType(rec.target.mediaType)) desc = rec.target;
  else {
    const list = await localManifests(content, rec.target);
    if (list.length === 0) {
      throw new NotFoundError(`image ${input} has no manifest in the local store`, { hint: `pull it again: img pull ${input}` });
    }
    if (want) {
      const hit = list.find((d) => matchPlatform(want, d.platform));
      if (!hit) return null;
      desc = hit;
    } else desc = list.length === 1 && !list[0].platform ? list[0] : selectManifest(list, hostPlatform(), input);
  }
  const manifest = await content.readJson<Manifest>(desc.digest);
  const config = await content.readJson<ImageConfig>(manifest.config.digest);
  const has: Platform = { os: config.os, architecture: config.architecture, variant: config.variant };
  if (want && config.architecture && !matchPlatform(want, has)) {
    throw new NotFoundError(`image ${input} is for ${formatPlatform(has)}, not ${formatPlatform(want)}`, {
      hint: `unpack it without --platform, or pull an image that has ${formatPlatform(want)}`,
    });
  }
  return { name, manifestDescriptor: desc, manifest, config };
}

export async function unpackResolved(
  stateDir: string,
  sn: Snapshotter,
  img: ResolvedImage,
  onProgress?: (ev: UnpackProgress) => void,
): Promise<string> {
  return unpackLayers(stateDir, sn, img.manifest, img.config, onProgress, { ref: `${img.name}@${img.manifestDescriptor.digest}` });
}

// Refuses an output directory that exists with content (never merge into or clobber
// it), and one that cannot be made: a missing one is created and removed again, so a
// path under /proc or a read-only disk fails here, before the image is pulled.
export async function checkOutputDir(out: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(out);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await makeDirs(out, 'output directory (-o, --output)');
    await fsp.rmdir(out);
    return;
  }
  if (!st.isDirectory()) {
    throw new UsageError(`output path ${out} exists and is not a directory`, { hint: 'choose another path with -o, --output' });
  }
  if ((await fsp.readdir(out)).length > 0) {
    throw new UsageError(`output directory ${out} is not empty`, {
      hint: 'choose a new or empty directory with -o, --output, or remove this one first',
    });
  }
}

// Removes what copyOut wrote: the directory's contents, and the directory
// itself when it did not exist before.
export async function removeOutput(out: string, keepDir: boolean): Promise<void> {
  if (!keepDir) {
    await fsp.rm(out, { recursive: true, force: true });
    return;
  }
  for (const n of await fsp.readdir(out).catch(() => [] as string[])) await fsp.rm(path.join(out, n), { recursive: true, force: true });
}

class Pool {
  private active = 0;
  private waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export interface CopyOutResult {
  files: number;
  bytes: number;
  skippedDevices: number;
}

// Copies `src` (a merged rootfs) into `dst` (absent or empty), every file
// owned by namespace root (= the caller). The addon's threaded copyTree does
// the bulk copy, then owners are reset; without it (or on a tree it cannot
// copy, e.g. with device nodes) a portable copy does it all.
export async function copyOut(src: string, dst: string): Promise<CopyOutResult> {
  let addon: { copyTree?: (s: string, d: string) => Promise<{ files: number; bytes: number }> } | null = null;
  try {
    addon = loadAddon();
  } catch {
    addon = null;
  }
  if (addon && typeof addon.copyTree === 'function' && process.env.IMG_COPYOUT !== 'portable') {
    const existed = await fsp
      .rmdir(dst)
      .then(() => true)
      .catch((err) => {
        if (isErrno(err, 'ENOENT')) return false;
        throw err;
      });
    try {
      const r = await addon.copyTree(src, dst);
      await resetOwners(dst);
      return { files: r.files, bytes: r.bytes, skippedDevices: 0 };
    } catch (err) {
      debug(`unpack: copyTree failed (${(err as Error).message}); copying file by file`);
      await fsp.rm(dst, { recursive: true, force: true });
      if (existed) await fsp.mkdir(dst, { mode: 0o755 });
    }
  }
  return copyOutPortable(src, dst);
}

// lchown everything to 0:0 (root of our namespace = the caller on the host),
// restoring setuid/setgid bits that chown(2) clears on non-directories.
export async function resetOwners(root: string): Promise<void> {
  const pool = new Pool(32);
  const visit = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p);
    if (st.uid !== 0 || st.gid !== 0) {
      await pool.run(() => fsp.lchown(p, 0, 0));
      if (!st.isSymbolicLink() && !st.isDirectory() && st.mode & 0o6000) await fsp.chmod(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) await Promise.all((await fsp.readdir(p)).map((n) => visit(path.join(p, n))));
  };
  await visit(root);
}

async function copyOutPortable(src: string, dst: string): Promise<CopyOutResult> {
  const res: CopyOutResult = { files: 0, bytes: 0, skippedDevices: 0 };
  const links = new Map<string, string>(); // dev:ino of multiply-linked files → first copy
  const dirs: { p: string; st: fs.Stats }[] = [];
  const pool = new Pool(16);
  await makeDirs(dst, 'output directory', 0o700);
  const rootSt = await fsp.stat(src);
  dirs.push({ p: dst, st: rootSt });

  const visit = async (s: string, d: string): Promise<void> => {
    const names = await fsp.readdir(s);
    await Promise.all(
      names.map(async (name) => {
        const sp = path.join(s, name);
        const dp = path.join(d, name);
        const st = await fsp.lstat(sp);
        if (st.isDirectory()) {
          await fsp.mkdir(dp, { mode: 0o700 });
          dirs.push({ p: dp, st });
          await visit(sp, dp);
          return;
        }
        if (st.nlink > 1 && !st.isDirectory()) {
          const key = `${st.dev}:${st.ino}`;
          const first = links.get(key);
          if (first) {
            await fsp.link(first, dp);
            return;
          }
          links.set(key, dp);
        }
        if (st.isFile()) {
          await pool.run(() => fsp.copyFile(sp, dp, fs.constants.COPYFILE_FICLONE));
          res.files++;
          res.bytes += st.size;
          await fsp.chmod(dp, st.mode & 0o7777);
          await fsp.utimes(dp, st.atime, st.mtime);
        } else if (st.isSymbolicLink()) {
          await fsp.symlink(await fsp.readlink(sp), dp);
          await fsp.lutimes(dp, st.atime, st.mtime).catch(() => undefined);
        } else if (st.isFIFO()) {
          mknod(dp, fs.constants.S_IFIFO | (st.mode & 0o7777), 0, 0);
        } else {
          // Device nodes and sockets cannot be created without privileges.
          links.delete(`${st.dev}:${st.ino}`);
          res.skippedDevices++;
          debug(`unpack: skipping ${st.isSocket() ? 'socket' : 'device'} ${sp}`);
        }
      }),
    );
  };
  await visit(src, dst);
  // Modes and times of directories last (deepest first), after their contents are written.
  for (const { p, st } of dirs.reverse()) {
    await fsp.chmod(p, st.mode & 0o7777);
    await fsp.utimes(p, st.atime, st.mtime);
  }
  if (res.skippedDevices) warn(`skipped ${res.skippedDevices} device node(s)/socket(s): an unprivileged user cannot create them`);
  return res;
}
