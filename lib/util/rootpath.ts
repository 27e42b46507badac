// Resolve a path inside a root directory the way a process chrooted there would,
// following symlinks but never leaving the root: `..` at the root stays at the root
// and absolute symlink targets are taken relative to the root. Used wherever we
// write into a snapshot (COPY, mkdir, rm) so hostile links cannot redirect writes.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ContentError, isErrno } from './errors';

const MAX_LINKS = 255; // same bound as the kernel's ELOOP for path walks

// Returns the host path for `p` (absolute or relative to the root) inside `root`.
// Intermediate symlinks are always followed (within the root); the last component
// is followed only when `followLast` is true. Missing components are allowed: the
// rest of the path is appended unresolved.
export async function resolveInRoot(root: string, p: string, followLast = true): Promise<string> {
  const pending = splitComponents(p);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const isLast = pending.length === 0;
    if (isLast && !followLast) {
      resolved.push(part);
      break;
    }
    let target: string;
    try {
      const st = await fs.lstat(candidate);
      if (!st.isSymbolicLink()) {
        resolved.push(part);
        continue;
      }
      target = await fs.readlink(candidate);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) {
        resolved.push(part, ...pending.filter((x) => x !== '.'));
        return path.join(root, ...normalizeDotDot(resolved));
      }
      throw err;
    }
    if (++links > MAX_LINKS) {
      throw new ContentError(`too many levels of symbolic links resolving ${p} in ${root}`, { hint: 'fix the symlink loop in the image' });
    }
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...splitComponents(target));
  }
  return path.join(root, ...resolved);
}

function splitComponents(p: string): string[] {
  return p.split('/').filter((x) => x !== '' && x !== '.');
}

function normalizeDotDot(parts: string[]): string[] {
  const out: string[] = [];
  for (const x of parts) {
    if (x === '..') out.pop();
    else out.push(x);
  }
  return out;
}
