// Owners the user namespace cannot hold.
//
// img's namespace maps the user's subordinate ids (usually 65,536 of them) or, for an account
// with none (LDAP and HPC logins rarely have /etc/subuid lines), only the user's own id, as 0.
// chown to an id outside the map fails (EINVAL). Rather than fail the layer or lose the owner,
// the file stays owned by 0:0 on disk and keeps the owner the image gave it in OWNER_XATTR,
// "uid:gid"; the layer writer (diff.ts) reads it back, so a layer written from the snapshot
// has the owners it was built with, whatever the map. Inside a RUN step such a file shows as
// root's. Symlinks and special files cannot carry user.* xattrs: they stay root's.
//
// OWNER_XATTR is img's own name: a layer's xattr of that name is stored escaped
// (overlay-format.ts), so no layer can pass its own value off as an owner.
import * as fs from 'node:fs';
import { idMapped } from '../host/mapped-ids';
import { showBytes } from '../util/bytenames';
import { HostError } from '../util/errors';
import * as sys from './sys';

export const OWNER_XATTR = 'user.img.owner';
export const OWN_XATTR_PREFIX = 'user.img.';

/** Whether this process's user namespace maps both ids. */
export function idsMapped(uid: number, gid: number): boolean {
  return idMapped('uid', uid) && idMapped('gid', gid);
}

/**
 * Give p (a filesystem path as fsPath makes it, links not followed) the owner uid:gid: chown
 * where the namespace maps both ids, else the owner kept in OWNER_XATTR. `replaced`: p may
 * carry an owner kept earlier (copied, or an existing directory), which a chown must drop.
 */
export function setOwner(p: string | Buffer, uid: number, gid: number, kind: 'file' | 'dir' | 'other', replaced = false): void {
  if (idsMapped(uid, gid)) {
    fs.lchownSync(p, uid, gid);
    if (replaced && kind !== 'other') dropKeptOwner(p);
    return;
  }
  // Owned by the namespace's root; the real owner noted where the file type allows it.
  fs.lchownSync(p, 0, 0);
  if (kind === 'other') return;
  try {
    sys.lsetxattr(p, OWNER_XATTR, Buffer.from(`${uid}:${gid}`));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!(err instanceof sys.XattrUnsupported) && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    throw new HostError(`cannot keep the owner ${uid}:${gid} of ${typeof p === 'string' ? p : showBytes(p.toString('latin1'))}: this user namespace does not map it, and ${err instanceof sys.XattrUnsupported ? 'without the native addon img cannot note it' : 'this filesystem takes no user xattrs to note it in'}`, {
      hint: 'add subordinate ids for your user (/etc/subuid, /etc/subgid: img doctor), or keep img\'s state on a local disk (--state)',
      cause: err,
    });
  }
}

function dropKeptOwner(p: string | Buffer): void {
  try {
    sys.lremovexattr(p, OWNER_XATTR);
  } catch {
    /* none kept (ENODATA), or no xattrs here at all */
  }
}

/** The owner kept in OWNER_XATTR's value, or undefined when it is not one. */
export function parseKeptOwner(v: Buffer | null | undefined): { uid: number; gid: number } | undefined {
  const m = v ? /^(\d{1,10}):(\d{1,10})$/.exec(v.toString('latin1')) : null;
  if (!m) return undefined;
  const uid = Number(m[1]);
  const gid = Number(m[2]);
  return uid <= 0xffffffff && gid <= 0xffffffff ? { uid, gid } : undefined;
}
