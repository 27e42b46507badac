// The few syscalls archive/ needs that Node lacks (mknod, xattrs) go through
// this one module, so the addon (lib/host) is loaded lazily and in one place.
// When the addon (or one of its functions) is missing, mknod falls back to the
// `mknod`/`mkfifo` programs and xattr calls report "unsupported". Paths are strings
// or Buffers of raw bytes (util/bytenames.ts fsPath).
import { spawnSync } from 'node:child_process';
import { loadAddon, makedev } from '../host/index';
import type { NativeAddon } from '../host/native';

type XattrAddon = Pick<NativeAddon, 'mknod' | 'lsetxattr' | 'lgetxattr' | 'llistxattr' | 'lremovexattr'>;

let cached: Partial<XattrAddon> | null | undefined;

function addon(): Partial<XattrAddon> | null {
  if (cached !== undefined) return cached;
  try {
    cached = loadAddon();
  } catch {
    cached = null;
  }
  return cached;
}

export const S_IFMT = 0o170000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

// Errno-shaped (code ENOTSUP) so callers treat it like a filesystem without xattrs.
export class XattrUnsupported extends Error {
  code = 'ENOTSUP';
}

/** mknod(2) with S_IF* bits in mode. Throws errors with .code (EPERM, EEXIST, ...). */
export function mknod(path: string | Buffer, mode: number, major: number, minor: number): void {
  const a = addon();
  if (a && typeof a.mknod === 'function') {
    a.mknod(path, mode, makedev(major, minor));
    return;
  }
  // Fallback: coreutils programs (one spawn per node; fine for the few devices layers carry).
  const type = mode & S_IFMT;
  const perm = (mode & 0o7777).toString(8);
  const p = typeof path === 'string' ? path : path.toString(); // argv is text: names that are not UTF-8 need the addon
  const args =
    type === S_IFIFO
      ? ['-m', perm, p]
      : ['-m', perm, p, type === S_IFBLK ? 'b' : 'c', String(major), String(minor)];
  const r = spawnSync(type === S_IFIFO ? 'mkfifo' : 'mknod', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    const msg = (r.stderr || '').trim();
    const err = new Error(`mknod ${p}: ${msg || r.error?.message || 'failed'}`) as NodeJS.ErrnoException;
    err.code = /ermission|not permitted/.test(msg) ? 'EPERM' : /exists/.test(msg) ? 'EEXIST' : 'EIO';
    throw err;
  }
}

export function xattrSupported(): boolean {
  const a = addon();
  return !!a && typeof a.lsetxattr === 'function';
}

export function lsetxattr(path: string | Buffer, name: string, value: Buffer): void {
  const a = addon();
  if (!a || typeof a.lsetxattr !== 'function') throw new XattrUnsupported('xattrs need the native addon (lib/host)');
  a.lsetxattr(path, name, value);
}

export function lgetxattr(path: string | Buffer, name: string): Buffer | null {
  const a = addon();
  if (!a || typeof a.lgetxattr !== 'function') return null;
  return a.lgetxattr(path, name);
}

export function llistxattr(path: string | Buffer): string[] {
  const a = addon();
  if (!a || typeof a.llistxattr !== 'function') return [];
  return a.llistxattr(path);
}

export function lremovexattr(path: string | Buffer, name: string): void {
  const a = addon();
  if (!a || typeof a.lremovexattr !== 'function') throw new XattrUnsupported('xattrs need the native addon (lib/host)');
  a.lremovexattr(path, name);
}

// overlayfs's own bookkeeping (trusted.overlay.*, user.overlay.* with userxattr) is not a file's content.
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/**
 * Copies src's xattrs (file capabilities, ACLs, user.*) onto dst, links not followed,
 * overlay's own and `except` excepted. Returns the names that could not be set (EPERM, ENOTSUP):
 * as BuildKit's copy, callers note them and go on.
 */
export function copyXattrs(src: string, dst: string, except?: string): string[] {
  const failed: string[] = [];
  let names: string[];
  try {
    names = llistxattr(src);
  } catch {
    return failed; // a filesystem without xattrs: nothing to copy
  }
  for (const name of names) {
    if (isOverlayXattr(name) || name === except) continue;
    const value = lgetxattr(src, name);
    if (!value) continue;
    try {
      lsetxattr(dst, name, value);
    } catch {
      failed.push(name);
    }
  }
  return failed;
}
