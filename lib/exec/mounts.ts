// Path handling inside a container rootfs: resolve a path the way the
// container would see it (symlinks relative to the rootfs, ".." clamped at its
// root), so reading /etc/passwd or creating a mount point never touches the host.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno } from '../util/errors';
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

// Mount points runc will create in a rootfs: the missing path components of
// each destination, so the ones still empty after the step can be removed and
// stay out of its layer (as BuildKit does with the mount points it creates).
export interface CreatedMountPoints {
  paths: string[]; // host paths, parents before children
  // Existing directories runc will create mount points in, with their times, so
  // removing the new ones leaves these parents exactly as they were.
  parents: Map<string, { atime: Date; mtime: Date }>;
}

// Walks each destination once, component by component, sharing the prefixes
// destinations have in common (/dev, /dev/pts, /dev/shm…): one lstat per
// distinct prefix, all of them at once. A symlinked component is resolved as
// the container sees it (resolveInRoot); below a missing one nothing is looked
// up; a component that cannot be looked at (not ENOENT) ends that destination's walk.
export async function missingMountPoints(rootfs: string, destinations: string[]): Promise<CreatedMountPoints> {
  const root: Lookup = { host: await resolveInRoot(rootfs, '/'), state: 'exists' };
  const known = new Map<string, Promise<Lookup>>(); // prefix → where it is, and whether it exists
  const look = (prefix: string, parent: Lookup, part: string | null): Promise<Lookup> => {
    let p = known.get(prefix);
    if (!p) {
      p = (async () => {
        if (part !== null) {
          const candidate = path.join(parent.host, part);
          if (parent.state === 'missing') return { host: candidate, state: 'missing' };
          const st = await lstatState(candidate);
          if (st !== 'symlink') return { host: candidate, state: st };
        }
        // A symlink (or a `..`): resolve the prefix as the container would.
        const host = await resolveInRoot(rootfs, prefix);
        const st = await lstatState(host);
        return { host, state: st === 'symlink' ? 'exists' : st };
      })();
      known.set(prefix, p);
    }
    return p;
  };
  const walks = await Promise.all(
    destinations.map(async (dest) => {
      const parts = dest.split('/').filter((x) => x !== '' && x !== '.');
      const dotdot = parts.includes('..');
      const steps: { here: Lookup; parent: Lookup }[] = [];
      let parent = root;
      for (let i = 1; i <= parts.length; i++) {
        const prefix = '/' + parts.slice(0, i).join('/');
        const here = await look(prefix, parent, dotdot ? null : parts[i - 1]);
        if (here.state === 'unknown') break;
        steps.push({ here, parent });
        parent = here;
      }
      return steps;
    }),
  );
  const points: CreatedMountPoints = { paths: [], parents: new Map() };
  const parents: string[] = [];
  for (const steps of walks) {
    for (const { here, parent } of steps) {
      if (here.state !== 'missing' || points.paths.includes(here.host)) continue;
      points.paths.push(here.host);
      if (parent.state === 'exists' && !parents.includes(parent.host)) parents.push(parent.host);
    }
  }
  const times = await Promise.all(parents.map((dir) => fsp.stat(dir).catch(() => null)));
  parents.forEach((dir, i) => {
    const st = times[i];
    if (st) points.parents.set(dir, { atime: st.atime, mtime: st.mtime });
  });
  return points;
}

interface Lookup {
  host: string;
  state: 'exists' | 'missing' | 'unknown';
}

async function lstatState(p: string): Promise<'exists' | 'missing' | 'unknown' | 'symlink'> {
  try {
    return (await fsp.lstat(p)).isSymbolicLink() ? 'symlink' : 'exists';
  } catch (err) {
    return isErrno(err, 'ENOENT') ? 'missing' : 'unknown';
  }
}

// Removes the mount points `missingMountPoints` found that are still an empty
// directory or an empty file, and puts their parents' times back. A path waits
// only for the created paths below it (its own mount points): the rest go at
// once (the step waits for this before its snapshot is committed, and each
// removal is a slow inode free on a busy ext4).
export async function removeMountPoints(points: CreatedMountPoints): Promise<void> {
  const done = new Map<string, Promise<void>>();
  const remove = (p: string): Promise<void> => {
    let r = done.get(p);
    if (!r) {
      const below = points.paths.filter((q) => q.startsWith(p + '/'));
      r = Promise.all(below.map(remove)).then(() => removeIfEmpty(p));
      done.set(p, r);
    }
    return r;
  };
  await Promise.all(points.paths.map(remove));
  await Promise.all([...points.parents].map(([dir, t]) => fsp.utimes(dir, t.atime, t.mtime).catch(() => undefined)));
}

async function removeIfEmpty(p: string): Promise<void> {
  try {
    const st = await fsp.lstat(p);
    if (st.isDirectory()) await fsp.rmdir(p);
    else if (st.isFile() && st.size === 0) await fsp.unlink(p);
  } catch {
    /* in use or not empty: the step made it real */
  }
}
