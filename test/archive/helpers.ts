// Shared helpers for the archive tests: temp dirs and a comparable description of a tree.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { llistxattr, lgetxattr } from '../../lib/archive/sys';

export function tmp(prefix = 'img-archive-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// `rm -rf`: fs.rmSync recurses per level and overflows on the deep-tree fixtures
export function rmrf(p: string): void {
  spawnSync('rm', ['-rf', '--one-file-system', p]);
}

export interface TreeOpts {
  times?: boolean; // include mtimes (seconds)
  xattrs?: boolean;
  ino?: boolean; // include hard-link groups
}

/** path → "type mode uid:gid size|target|rdev [mtime] [sha] [xattrs]", iteratively (deep trees). */
export function describeTree(root: string, opts: TreeOpts = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const stack = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    for (const name of fs.readdirSync(rel ? path.join(root, rel) : root).sort()) {
      const r = rel ? rel + '/' + name : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      let d = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isFile()) {
        d += ` ${st.size} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`;
        if (opts.ino && st.nlink > 1) {
          const first = inodes.get(st.ino);
          if (first) d += ` =${first}`;
          else inodes.set(st.ino, r);
        }
      } else if (st.isSymbolicLink()) d += ` -> ${fs.readlinkSync(p)}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) d += ` dev ${st.rdev}`;
      if (opts.times && !st.isSymbolicLink()) d += ` t${Math.floor(st.mtimeMs / 1000)}`;
      if (opts.xattrs) {
        const xs = llistxattr(p)
          .filter((n) => n.startsWith('user.'))
          .sort()
          .map((n) => `${n}=${lgetxattr(p, n)?.toString()}`);
        if (xs.length) d += ` [${xs.join(',')}]`;
      }
      out[r] = d;
      if (st.isDirectory()) stack.push(r);
    }
  }
  return out;
}
