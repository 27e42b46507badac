// Which uids and gids this process's user namespace maps (/proc/self/{uid,gid}_map), read
// once: a process never changes its own namespace (img enters it before Node starts, and
// the door's children are other processes). Outside any namespace every id is mapped.
import * as fs from 'node:fs';

type Ranges = Array<[start: number, count: number]>;
const maps: { uid?: Ranges | null; gid?: Ranges | null } = {};

function read(kind: 'uid' | 'gid'): Ranges | null {
  try {
    const out: Ranges = [];
    for (const line of fs.readFileSync(`/proc/self/${kind}_map`, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/).map(Number);
      if (f.length === 3 && f.every(Number.isFinite)) out.push([f[0], f[2]]);
    }
    return out;
  } catch {
    return null; // unreadable: assume mapped, and let a chown say otherwise
  }
}

/** Whether `id` is mapped in this process's user namespace. */
export function idMapped(kind: 'uid' | 'gid', id: number): boolean {
  if (maps[kind] === undefined) maps[kind] = read(kind);
  const r = maps[kind];
  return !r || r.some(([start, count]) => id >= start && id - start < count);
}
