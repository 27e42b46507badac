// Path handling inside a container rootfs: resolve a path the way the
// container would see it (symlinks relative to the rootfs, ".." clamped at its
// root), so reading /etc/passwd or creating a mount point never touches the host.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { resolveInRoot } from '../util/rootpath';

// One implementation of root-scoped resolution serves file ops, passwd lookups and mounts.
export { resolveInRoot } from '../util/rootpath';

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
