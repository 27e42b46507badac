// Path handling inside a container rootfs: resolve a path the way the
// container would see it (symlinks relative to the rootfs, ".." clamped at its
// root), so reading /etc/passwd or creating a mount point never touches the host.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ImgError, isErrno } from '../util/errors';

const MAX_LINKS = 255;

// Host path of `p` inside `root`, following symlinks within the root. Missing
// trailing components are allowed (the result names where they would be).
export async function resolveInRoot(root: string, p: string): Promise<string> {
  const base = path.resolve(root);
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift()!;
    if (comp === '..') {
      done.pop();
      continue;
    }
    const host = path.join(base, ...done, comp);
    let target: string | null = null;
    try {
      const st = await fsp.lstat(host);
      if (st.isSymbolicLink()) target = await fsp.readlink(host);
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
    if (target === null) {
      done.push(comp);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new ImgError(`too many levels of symbolic links resolving ${p} in ${root}`, {
        hint: 'fix the symlink loop in the image',
      });
    }
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return path.join(base, ...done);
}

// Creates the mount point for `target` inside rootfs (a dir, or an empty file
// when the source is a file) and returns its host path.
export async function ensureMountPoint(rootfs: string, target: string, isDir: boolean): Promise<string> {
  const host = await resolveInRoot(rootfs, target);
  if (isDir) {
    await fsp.mkdir(host, { recursive: true });
  } else {
    await fsp.mkdir(path.dirname(host), { recursive: true });
    const fh = await fsp.open(host, 'a');
    await fh.close();
  }
  return host;
}
