// How a snapshot directory holds a layer: the overlay format's quirks in one place
// (apply writes it, diff reads it, the overlay snapshotter mounts it).
//
// native: the directory is the merged tree itself. Whiteouts delete; xattrs are stored
//   as the layer carries them.
// overlay: the directory is one layer of an overlay mount (kernel overlayfs or
//   fuse-overlayfs):
//   - a deleted path is a whiteout: a 0:0 character device under its name;
//   - an opaque directory (lower contents hidden) carries `opaqueXattr` = "y";
//   - xattrs whose names start with one of `ownPrefixes` are the backend's own
//     bookkeeping (opaque, redirect, origin, metacopy, …): stored as a layer carries
//     them, they would steer the mount (hide lower files, redirect directories).
//     So a layer's xattr in those namespaces is stored *escaped*, as the kernel's
//     overlayfs does since Linux 6.7: "<prefix>overlay.NAME" on disk is presented as
//     "<prefix>NAME" in the merged view, one level per "overlay." (umoci stores them
//     the same way). Writing the layer back unescapes them; unescaped ones on disk are
//     the backend's own and never go into a layer. Older kernels hide the escaped
//     names from the merged view; fuse-overlayfs hides every name in its namespaces.
// Every format: img's own user.img.* (owner.ts) is escaped the same way, so a layer's
// xattr of that name is kept as the layer's and never read as img's.
import { existsSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import { fsPath } from '../util/bytenames';
import { OWN_XATTR_PREFIX } from './owner';
import { lgetxattr } from './sys';

export interface DiskFormat {
  readonly kind: 'native' | 'overlay';
  /** overlay: the xattr that marks an opaque directory. */
  readonly opaqueXattr: string;
  /** overlay: xattr name prefixes the backend reads as its own (each ends with '.'). */
  readonly ownPrefixes: readonly string[];
}

export const NATIVE_FORMAT: DiskFormat = { kind: 'native', opaqueXattr: '', ownPrefixes: [] };

/**
 * The overlay format of a backend. Kernel overlayfs uses the user.overlay.* names when
 * mounted with userxattr (in a user namespace), trusted.overlay.* otherwise;
 * fuse-overlayfs reads both, and its own user.fuseoverlayfs.* too.
 */
export function overlayFormat(backend: 'overlayfs' | 'fuse-overlayfs', userxattr: boolean): DiskFormat {
  const ns = userxattr ? 'user.overlay.' : 'trusted.overlay.';
  const ownPrefixes = backend === 'overlayfs' ? [ns] : ['user.overlay.', 'trusted.overlay.', 'user.fuseoverlayfs.'];
  return { kind: 'overlay', opaqueXattr: ns + 'opaque', ownPrefixes };
}

const ESCAPE = 'overlay.';

function ownPrefix(f: DiskFormat, name: string): string | undefined {
  for (const p of f.ownPrefixes) if (name.startsWith(p)) return p;
  return name.startsWith(OWN_XATTR_PREFIX) ? OWN_XATTR_PREFIX : undefined;
}

/** The name a layer's xattr is stored under. */
export function xattrToDisk(f: DiskFormat, name: string): string {
  const p = ownPrefix(f, name);
  return p === undefined ? name : p + ESCAPE + name.slice(p.length);
}

/** The layer's name for an xattr stored on disk; null for the backend's own. */
export function xattrToLayer(f: DiskFormat, name: string): string | null {
  const p = ownPrefix(f, name);
  if (p === undefined) return name;
  return name.startsWith(ESCAPE, p.length) ? p + name.slice(p.length + ESCAPE.length) : null;
}

export const WH_PREFIX = '.wh.';
export const WH_OPAQUE = '.wh..wh..opq';

/** An overlay whiteout: a 0:0 character device. */
export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * Whether a directory of an overlay layer (a byte-string path) is opaque for the
 * format's backend: the opaque xattr of any of its namespaces ("y"), or, as
 * fuse-overlayfs also reads it, a `.wh..wh..opq` file inside.
 */
export function isOpaqueDir(f: DiskFormat, dir: string): boolean {
  const p = fsPath(dir);
  for (const prefix of f.ownPrefixes) {
    let v: Buffer | null = null;
    try {
      v = lgetxattr(p, prefix + 'opaque');
    } catch {
      /* no xattr support, or not readable here (trusted.* in a user namespace): not opaque */
    }
    if (v && v.length > 0 && (v[0] === 0x79 || v[0] === 0x59)) return true; // 'y'
  }
  return f.kind === 'overlay' && existsSync(fsPath(dir + '/' + WH_OPAQUE));
}

/**
 * What the merged view of overlay layer dirs `lowers` (byte strings, newest first) holds
 * at `rel`: the topmost entry and its host path, or null — absent, whited out, or below an
 * opaque directory or a non-directory. Only directories merge: a non-directory in a layer
 * hides everything older at that path.
 */
export function lowerEntry(f: DiskFormat, lowers: readonly string[], rel: string): { host: string; st: Stats } | null {
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0) return null;
  let active = lowers;
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    prefix = prefix ? prefix + '/' + parts[i] : parts[i];
    let top: { host: string; st: Stats } | null = null;
    const merged: string[] = [];
    for (const layer of active) {
      const host = layer + '/' + prefix;
      const st = lstatSync(fsPath(host), { throwIfNoEntry: false });
      if (!st) continue;
      if (isWhiteout(st)) break; // hides this path in every older layer
      if (top === null) top = { host, st };
      if (!st.isDirectory() || !top.st.isDirectory()) break;
      merged.push(layer);
      if (isOpaqueDir(f, host)) break;
    }
    if (!top) return null;
    if (i === parts.length - 1) return top;
    if (!top.st.isDirectory()) return null;
    active = merged;
  }
  return null;
}

/**
 * Of the whiteouts `rels` (root-relative byte strings) written into layer dir `upper`
 * before its lower layers were known (applyLayer's blindWhiteouts), remove those with
 * nothing below them: readdir of a directory that is not merged (only in this layer, or
 * opaque) lists a whiteout as a name that no lookup finds.
 */
export function dropUnneededWhiteouts(f: DiskFormat, upper: string, lowers: readonly string[], rels: readonly string[]): void {
  for (const rel of rels) {
    const p = upper + '/' + rel;
    const st = lstatSync(fsPath(p), { throwIfNoEntry: false });
    if (!st || !isWhiteout(st)) continue; // replaced later in the layer
    let hidden = false;
    for (let i = rel.indexOf('/'); i > 0 && !hidden; i = rel.indexOf('/', i + 1)) hidden = isOpaqueDir(f, upper + '/' + rel.slice(0, i));
    if (hidden || !lowerEntry(f, lowers, rel)) unlinkSync(fsPath(p));
  }
}
