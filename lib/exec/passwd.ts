// Resolves a Dockerfile USER value ("name", "uid", "name:group", "uid:gid")
// against the rootfs's /etc/passwd and /etc/group, the way docker/runc do.
// Files are read through resolveInRoot, so a symlinked /etc/passwd in an image
// cannot make us read the host's files.
import * as fsp from 'node:fs/promises';
import { ImgError, isErrno } from '../util/errors';
import { resolveInRoot } from './mounts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^[0-9]+$/;
const MAX_ID = 2 ** 32 - 2;

async function readInRoot(rootfs: string, file: string): Promise<string | null> {
  try {
    return await fsp.readFile(await resolveInRoot(rootfs, file), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return null;
    throw err;
  }
}

function lines(text: string | null): string[][] {
  if (!text) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function parsePasswd(text: string | null): PasswdEntry[] {
  return lines(text)
    .filter((f) => f.length >= 4 && NUMERIC.test(f[2]) && NUMERIC.test(f[3]))
    .map((f) => ({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' }));
}

export function parseGroup(text: string | null): GroupEntry[] {
  return lines(text)
    .filter((f) => f.length >= 3 && NUMERIC.test(f[2]))
    .map((f) => ({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

function numeric(value: string, what: string, spec: string): number {
  const n = Number(value);
  if (n > MAX_ID) {
    throw new ImgError(`invalid ${what} ${value} in user "${spec}": out of range`, {
      hint: 'use an id between 0 and 4294967294, or a name defined in the image',
    });
  }
  return n;
}

export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const spec = user.trim();
  const [userPart, groupPart] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, ''];
  // Even numeric uids pick up home and primary gid from passwd when listed.
  // /etc/group is read alongside (a RUN waits for both before runc starts), used when needed.
  const groupText = readInRoot(rootfs, '/etc/group');
  groupText.catch(() => undefined); // observed below when the group file is needed
  const passwd = parsePasswd(await readInRoot(rootfs, '/etc/passwd'));
  const userName = userPart === '' ? 'root' : userPart;

  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userName)) {
    uid = numeric(userName, 'uid', spec);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userName);
    if (!entry) {
      if (userName === 'root') {
        entry = { name: 'root', uid: 0, gid: 0, home: '/root' };
      } else {
        throw new ImgError(`unable to find user ${userName}: no matching entries in passwd file`, {
          hint: `create the user in an earlier step (e.g. RUN adduser -D ${userName}) or use a numeric uid`,
        });
      }
    }
    uid = entry.uid;
  }

  let gid = entry ? entry.gid : 0;
  const additionalGids: number[] = [];
  const needGroup = groupPart !== '' ? !NUMERIC.test(groupPart) : entry !== undefined;
  const groups = needGroup ? parseGroup(await groupText) : [];
  if (groupPart !== '') {
    if (NUMERIC.test(groupPart)) {
      gid = numeric(groupPart, 'gid', spec);
    } else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) {
        throw new ImgError(`unable to find group ${groupPart}: no matching entries in group file`, {
          hint: `create the group in an earlier step (e.g. RUN addgroup ${groupPart}) or use a numeric gid`,
        });
      }
      gid = g.gid;
    }
  } else if (entry) {
    // Like runc: supplementary groups come from /etc/group membership only
    // when the group was not given explicitly.
    for (const g of groups) {
      if (g.members.includes(entry.name) && g.gid !== gid && !additionalGids.includes(g.gid)) additionalGids.push(g.gid);
    }
  }
  // The primary group is a supplementary group too (BuildKit and containerd since
  // CVE-2023-25173): `id` shows it under groups=, and dropping the primary group
  // with setgid() cannot shed a group-denied file's protection.
  return { uid, gid, additionalGids: [gid, ...additionalGids], home: entry?.home ?? '/' };
}
