// `img unpack`: an image's merged rootfs copied into a plain directory the
// caller owns. Runs inside our user namespace: every file is created by
// namespace root (= the caller on the host), so owners map to the caller,
// while modes, links and times are preserved — except setuid/setgid bits on
// files, which would make them run as the caller for anyone (dropped, with a
// warning and a count), and device nodes, which the caller cannot create.
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
import { fsPath as F, showBytes, toBytes } from '../util/bytenames';
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

export interface CopyOutResult {
  files: number;
  bytes: number;
  skippedDevices: number; // device nodes and sockets an unprivileged user cannot create
  setidCleared: number; // files whose setuid/setgid bits were dropped (resetOwners)
}

// Copies `src` (a merged rootfs) into `dst` (absent or empty), every file
// owned by namespace root (= the caller). The addon's threaded copyTree does
// the bulk copy, then owners are reset; without it (or on a tree it cannot
// copy, e.g. with device nodes) a portable copy does it all. What the caller
// cannot have (device nodes; setuid/setgid bits on files that are now theirs)
// is left out with one warning each, counted.
export async function copyOut(src: string, dst: string): Promise<CopyOutResult> {
  let addon: { copyTree?: (s: string, d: string) => Promise<{ files: number; bytes: number }> } | null = null;
  try {
    addon = loadAddon();
  } catch {
    addon = null;
  }
  let res: CopyOutResult | null = null;
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
      res = { files: r.files, bytes: r.bytes, skippedDevices: 0, setidCleared: 0 };
    } catch (err) {
      debug(`unpack: copyTree failed (${(err as Error).message}); copying file by file`);
      await fsp.rm(dst, { recursive: true, force: true });
      if (existed) await fsp.mkdir(dst, { mode: 0o755 });
    }
  }
  res ??= await copyOutPortable(src, dst);
  res.setidCleared = await resetOwners(dst);
  if (res.skippedDevices) warn(`skipped ${res.skippedDevices} device node(s)/socket(s): an unprivileged user cannot create them`);
  warnSetidCleared(res.setidCleared);
  return res;
}

export function warnSetidCleared(n: number): void {
  if (n) warn(`removed the setuid/setgid bits of ${n} file(s): they now belong to you and would run as you for anyone who starts them`);
}

// Entries of one directory handled at once by the tree walks below: enough to keep
// the thread pool busy, few enough that memory does not grow with the tree.
const BATCH = 64;

/**
 * lchown everything under root to 0:0 (root of our namespace = the caller on the
 * host), and drop setuid/setgid from every non-directory: owned by the caller, a
 * setuid file would run as the caller for anyone who starts it (chown(2) clears
 * the bits itself; they are not restored). Directories keep setgid (group
 * inheritance, harmless). Returns how many files lost the bits. Names are bytes;
 * the walk holds one batch and the pending directories, not the tree.
 */
export async function resetOwners(root: string): Promise<number> {
  let cleared = 0;
  const pending: string[] = [];
  const fix = async (p: string): Promise<void> => {
    const fp = F(p);
    const st = await fsp.lstat(fp);
    if (st.uid !== 0 || st.gid !== 0) await fsp.lchown(fp, 0, 0);
    if (st.isDirectory()) pending.push(p);
    else if (!st.isSymbolicLink() && st.mode & 0o6000) {
      await fsp.chmod(fp, st.mode & 0o1777);
      cleared++;
    }
  };
  await fix(toBytes(root));
  while (pending.length) {
    const dir = pending.pop()!;
    const names = await fsp.readdir(F(dir), { encoding: 'latin1' });
    for (let i = 0; i < names.length; i += BATCH) await Promise.all(names.slice(i, i + BATCH).map((n) => fix(dir + '/' + n)));
  }
  return cleared;
}

// The copy without the addon: names as bytes, an explicit stack instead of recursion,
// one batch of a directory's entries at a time. Directory modes and times are set
// last (a directory's own mode may forbid writing into it); only directories are
// remembered for that, and multiply-linked files for their second names.
async function copyOutPortable(src: string, dst: string): Promise<CopyOutResult> {
  const res: CopyOutResult = { files: 0, bytes: 0, skippedDevices: 0, setidCleared: 0 };
  const links = new Map<string, string>(); // dev:ino of multiply-linked files → first copy
  const dirs: { p: string; st: fs.Stats }[] = [];
  await makeDirs(dst, 'output directory', 0o700);
  const rootSt = await fsp.stat(src);
  const pending: Array<[string, string]> = [[toBytes(src), toBytes(dst)]];
  dirs.push({ p: toBytes(dst), st: rootSt });

  const copyOne = async (sp: string, dp: string, d: string): Promise<void> => {
    const st = await fsp.lstat(F(sp));
    if (st.isDirectory()) {
      await fsp.mkdir(F(dp), { mode: 0o700 });
      dirs.push({ p: dp, st });
      pending.push([sp, dp]);
      return;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first) {
        await fsp.link(F(first), F(dp));
        return;
      }
      links.set(key, dp);
    }
    if (st.isFile()) {
      await fsp.copyFile(F(sp), F(dp), fs.constants.COPYFILE_FICLONE);
      res.files++;
      res.bytes += st.size;
      await fsp.chmod(F(dp), st.mode & 0o7777);
      await fsp.utimes(F(dp), st.atime, st.mtime);
    } else if (st.isSymbolicLink()) {
      await fsp.symlink(F(await fsp.readlink(F(sp), { encoding: 'latin1' })), F(dp));
      await fsp.lutimes(F(dp), st.atime, st.mtime).catch(() => undefined);
    } else if (st.isFIFO()) {
      mknod(F(dp), fs.constants.S_IFIFO | (st.mode & 0o7777), 0, 0);
    } else {
      // Device nodes and sockets cannot be created without privileges.
      links.delete(`${st.dev}:${st.ino}`);
      res.skippedDevices++;
      debug(`unpack: skipping ${st.isSocket() ? 'socket' : 'device'} ${showBytes(sp)} in ${showBytes(d)}`);
    }
  };
  while (pending.length) {
    const [s, d] = pending.pop()!;
    const names = await fsp.readdir(F(s), { encoding: 'latin1' });
    for (let i = 0; i < names.length; i += BATCH) {
      await Promise.all(names.slice(i, i + BATCH).map((n) => copyOne(s + '/' + n, d + '/' + n, d)));
    }
  }
  // Modes and times of directories last, children before parents (pushed after them).
  for (let i = dirs.length - 1; i >= 0; i--) {
    const { p, st } = dirs[i];
    await fsp.chmod(F(p), st.mode & 0o7777);
    await fsp.utimes(F(p), st.atime, st.mtime);
  }
  return res;
}
