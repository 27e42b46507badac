// Subordinate id ranges (/etc/subuid, /etc/subgid) and the id map a rootless
// namespace gets from them. Lines are "owner:start:count" where owner is a
// user name or a numeric uid; like shadow's newuidmap, both forms match.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface IdRange {
  start: number;
  count: number;
}

// One line of a map: inside ids [inside, inside+count) are host ids [outside, outside+count).
export interface IdMapEntry {
  inside: number;
  outside: number;
  count: number;
}

export function parseSubIds(text: string, user: string | undefined, uid: number): IdRange[] {
  const out: IdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [owner, s, c] = line.split(':');
    if (owner !== String(uid) && (user === undefined || owner !== user)) continue;
    const start = Number(s);
    const count = Number(c);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count <= 0) continue;
    out.push({ start, count });
  }
  return out;
}

export function currentUserName(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined; // no passwd entry for this uid: match numeric lines only
  }
}

// The caller's ranges in /etc/subuid or /etc/subgid. Both files are keyed by
// the user (name or uid), never by gid, as shadow's newgidmap reads them.
export async function readSubIds(file: string, user = currentUserName(), uid = process.getuid!()): Promise<IdRange[]> {
  try {
    return parseSubIds(await fs.promises.readFile(file, 'utf8'), user, uid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

// The map a namespace gets: inside 0 is the caller, inside 1..N the ranges in order.
export function buildIdMap(hostId: number, ranges: IdRange[]): IdMapEntry[] {
  const map: IdMapEntry[] = [{ inside: 0, outside: hostId, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    map.push({ inside: next, outside: r.start, count: r.count });
    next += r.count;
  }
  return map;
}

// The host id an inside id maps to, or undefined when unmapped.
export function toHostId(map: IdMapEntry[], inside: number): number | undefined {
  for (const e of map) if (inside >= e.inside && inside < e.inside + e.count) return e.outside + (inside - e.inside);
  return undefined;
}

// Parses /proc/<pid>/uid_map or gid_map text.
export function parseProcIdMap(text: string): IdMapEntry[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every(Number.isInteger))
    .map(([inside, outside, count]) => ({ inside, outside, count }));
}

// Finds a setuid helper (newuidmap/newgidmap) on PATH or in the usual places.
export function findHelper(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

// IMG_SUBUID_FILE/IMG_SUBGID_FILE point the range lookup elsewhere (tests of
// the fallbacks; img-launch reads the same variables). newuidmap still checks
// the real /etc files.
export function subIdFile(kind: 'uid' | 'gid'): string {
  return (kind === 'uid' ? process.env.IMG_SUBUID_FILE : process.env.IMG_SUBGID_FILE) || `/etc/sub${kind}`;
}
