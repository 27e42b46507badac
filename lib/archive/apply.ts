// Apply one layer (an OCI changeset tar, compressed or not) onto a directory, safely.
//
// Safety model (what a hostile layer cannot do):
// - Names are cleaned like path.Clean("/" + name): leading '/', './' and '..' that would
//   climb above the root are dropped, so every entry lands inside `root`.
// - Parent directories are resolved component by component with lstat. A parent that is a
//   symlink is followed *within root* (absolute targets restart at root, '..' stops at root),
//   like containerd's fs.RootPath; the entry's own last component is never followed (an
//   existing symlink there is replaced, files are opened O_NOFOLLOW|O_EXCL).
// - Hard-link targets are resolved the same way and must exist inside root.
// - A name the layer's format gives a meaning to cannot be smuggled in as content: whiteout
//   names are never created (and may not be used as directories), xattrs in the overlay
//   backend's own namespaces are stored escaped (overlay-format.ts).
// Not defended: another process changing `root` while we apply (no openat2/RESOLVE_IN_ROOT).
//
// What an entry means (the same on every backend; test/snapshot/differential.test.ts holds
// the backends to it): entries apply in order onto the merged tree of the lower layers, as
// when a tar is extracted there (OCI image spec, "Applying Changesets"; containerd's apply on
// a mounted snapshot). So a parent that is a symlink in a lower layer is followed, a missing
// parent is made (0755, root), `.wh.NAME` removes NAME from the merged tree, and
// `.wh..wh..opq` removes everything below its directory this layer has not written (its
// entries and the directories they were written through) — at the root too. A directory
// entry over a directory keeps the contents and takes the entry's mode, owner, times and
// xattrs (xattrs it does not carry are removed).
//
// Formats (overlay-format.ts): native applies onto the merged tree itself. Overlay applies
// into an empty upper directory: deletions become whiteouts and opaque marks, and where an
// entry depends on what the lower layers hold (a missing parent: a lower directory to copy
// up, or a symlink to follow; a hard link to a lower file; an opaque root, which the kernel
// ignores and which is spelled out with whiteouts) they are read from `lowers`. Without
// `lowers` (layers extracted side by side before their parents are known) such an entry
// stops the apply and the result says `needsLowers`: the caller extracts it again later.
//
// Names are bytes: every path here is a byte string (util/bytenames.ts), passed to the
// kernel through fsPath(), so names that are not UTF-8 are written exactly as stored.
//
// The tar parser and the entries' namespace changes (mkdir, open, symlink, link, unlink) are
// synchronous inside a Writable's _write: each chunk of tar is handled in its own turn of the
// event loop while decompression runs on the addon's codec pool. The bulk work goes to that
// pool too, in order, one batch at a time (host/layerops.ts): the diffID's SHA-256 of every
// chunk, and a regular file's data writes and metadata (chown, chmod, times, close) once the
// main thread has created it. Only a file's own fd is touched there, so whatever the main
// thread does next to the tree (a hard link to it, a whiteout removing it, a directory over
// it) gives the same result as when the file was finished first. A file with xattrs is
// written here instead: a write after lsetxattr would drop security.capability. Memory and
// open files stay bounded (QUEUE_HIGH_WATER, MAX_QUEUED_FILES) whatever the layer size.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LayerOpFailure, LayerOpQueue, QUEUE_HIGH_WATER } from '../host/layerops';
import type { Digest } from '../images/types';
import { fsPath as F, readdirBytes, readdirTypedBytes, readlinkBytes, showBytes, toBytes } from '../util/bytenames';
import { ContentError, hostErrorClass, ImgError } from '../util/errors';
import { AutoDecompress } from './compression';
import { idsMapped, setOwner } from './owner';
import { isWhiteout, lowerEntry, NATIVE_FORMAT, WH_OPAQUE, WH_PREFIX, xattrToDisk, xattrToLayer, type DiskFormat } from './overlay-format';
import * as sys from './sys';
import { TarParser, type TarHeader, type TarSink } from './tar';

export interface ApplyOptions {
  /** The snapshot dir (native), or an overlay layer dir (overlay format). */
  root: string;
  /** How `root` holds a layer (overlay-format.ts); native when absent. */
  format?: DiskFormat;
  /**
   * Overlay format: the lower layers' directories, newest first ([] for a bottom layer);
   * absent when not known yet (then the result may say needsLowers).
   */
  lowers?: string[];
  /** Remap tar ids before chown (unpack into a caller-owned dir). Implies chown. */
  idMap?: (uid: number, gid: number) => [number, number];
  /** chown to the tar uid/gid (true inside the user namespace). */
  sameOwner: boolean;
  onDebug?: (msg: string) => void;
}

export interface ApplyResult {
  diffId: Digest;
  size: number; // uncompressed tar bytes
  skippedDevices: number; // device nodes the caller may not create (mknod EPERM without privileges)
  /** Overlay format without `lowers`: an entry needs them; the apply stopped part way. */
  needsLowers?: boolean;
  /**
   * Overlay format without `lowers`: the whiteouts written (root-relative byte strings);
   * once the lowers are known, dropUnneededWhiteouts() removes those with nothing below.
   */
  blindWhiteouts?: string[];
}

const MAX_LINKS = 255;
const HOLE = 64 * 1024;
const ZEROS = Buffer.alloc(HOLE);
const O_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
// Literal parent paths remembered at once; past that the cache starts over (a layer of a
// million directories must not keep a million paths).
const DIR_CACHE_MAX = 16384;
// Files handed to the queue and not yet closed there; past that a file is written here.
const MAX_QUEUED_FILES = 256;

/** Clean a tar name (a byte string) to a root-relative path without '.', '..', or empty components ('' = root). */
export function cleanName(name: string): string {
  if (name === '.' || name === './') return '';
  if (!name.includes('..') && !name.includes('//') && !name.includes('./') && !name.startsWith('/') && !name.endsWith('/.')) {
    return name.endsWith('/') ? name.slice(0, -1) : name;
  }
  return path.posix.normalize('/' + name).slice(1).replace(/\/$/, '');
}

function lstatOrNull(p: string): fs.Stats | null {
  // no exception for ENOENT: throwing costs more than the syscall
  return fs.lstatSync(F(p), { throwIfNoEntry: false }) ?? null;
}

/**
 * rm -rf of a byte-string path without recursion (fs.rmSync recurses per level and
 * overflows the stack on the deep trees a hostile layer can build). Never follows symlinks.
 */
export function removeTree(p: string): void {
  const st = lstatOrNull(p);
  if (!st) return;
  if (!st.isDirectory()) {
    fs.unlinkSync(F(p));
    return;
  }
  const dirs: string[] = [];
  const pending = [p];
  while (pending.length) {
    const d = pending.pop()!;
    dirs.push(d);
    for (const e of readdirTypedBytes(d)) {
      const c = d + '/' + e.name;
      if (e.isDirectory()) pending.push(c);
      else fs.unlinkSync(F(c));
    }
  }
  // children were pushed after their parents: remove in reverse
  for (let i = dirs.length - 1; i >= 0; i--) fs.rmdirSync(F(dirs[i]));
}

/** Overlay: remove the whiteouts in the tree below dir (an upper dir's own, iteratively). */
function removeWhiteoutsBelow(dir: string): void {
  const pending = [dir];
  while (pending.length) {
    const d = pending.pop()!;
    for (const e of readdirTypedBytes(d)) {
      const p = d + '/' + e.name;
      if (e.isDirectory()) pending.push(p);
      else if (e.isCharacterDevice() && isWhiteout(fs.lstatSync(F(p)))) fs.unlinkSync(F(p));
    }
  }
}

// Thrown (and caught in entry()) when an overlay apply without `lowers` meets an entry
// that depends on them: not an error, the signal to stop and extract again later.
const NEEDS_LOWERS = Symbol('needs lowers');

interface DirMeta {
  mode: number;
  mtime: number;
}

class Extractor implements TarSink {
  private readonly root: string;
  private readonly fmt: DiskFormat;
  private readonly overlay: boolean;
  private readonly lowers: string[] | null; // overlay: known lower layer dirs (byte strings)
  // literal (cleaned) parent path from the tar → resolved root-relative path of a real dir
  private dirCache = new Map<string, string>();
  // native: resolved root-relative paths this layer wrote, entries and the directories
  // they were written through (an opaque marker keeps these)
  private written = new Set<string>();
  // overlay: directories this layer made opaque (below them nothing lower is visible)
  private opaqueDirs = new Set<string>();
  private dirMeta = new Map<string, DirMeta>(); // host path → final mode/times
  private removedAny = false; // a dir or symlink was replaced: re-check paths in finish()
  private fd = -1;
  private pos = 0;
  private holeAtEnd = false;
  private cur: TarHeader | null = null;
  private curHost = '';
  private queued = false; // the current file's data and metadata go through `queue`
  private readonly chown: boolean;
  private readonly debug: (m: string) => void;
  skippedDevices = 0;
  needsLowers = false;
  // overlay without lowers: whiteouts written without knowing whether anything is below
  blindWhiteouts: string[] = [];

  constructor(
    private readonly opts: ApplyOptions,
    private readonly queue: LayerOpQueue,
  ) {
    this.root = toBytes(path.resolve(opts.root));
    this.fmt = opts.format ?? NATIVE_FORMAT;
    this.overlay = this.fmt.kind === 'overlay';
    this.lowers = this.overlay && opts.lowers ? opts.lowers.map(toBytes) : null;
    this.chown = opts.sameOwner || !!opts.idMap;
    this.debug = opts.onDebug ?? (() => {});
  }

  private host(rel: string): string {
    return rel ? this.root + '/' + rel : this.root;
  }

  /** A queued file operation failed: the error names its entry. */
  queueFailed(f: LayerOpFailure): never {
    if (f.label === undefined) throw f.error;
    this.fail(f.label, f.error.syscall === 'write' ? 'cannot write its data' : 'cannot set file metadata', f.error);
  }

  private fail(entry: string, what: string, err?: unknown): never {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    // A full disk or a refused write is the host's; anything else the layer's.
    const Failure = hostErrorClass(err) ?? ContentError;
    throw new Failure(`layer entry ${JSON.stringify(showBytes(entry))}: ${what}${code ? ` (${code})` : ''}`, {
      hint: 'the layer is corrupt or hostile, or the target directory is not writable',
      cause: err,
      detail: err instanceof Error ? err.message : undefined,
    });
  }

  /** Overlay without lowers: this entry depends on them. */
  private blind(): never {
    this.needsLowers = true;
    throw NEEDS_LOWERS;
  }

  private markWritten(rel: string): void {
    if (!this.overlay) this.written.add(rel);
  }

  /** Overlay: what the lower layers show at rel (null when hidden by this layer's opaque dirs). */
  private lower(rel: string): { host: string; st: fs.Stats } | null {
    if (this.lowers === null) this.blind();
    if (this.opaqueDirs.size) {
      if (this.opaqueDirs.has('')) return null;
      for (let i = rel.indexOf('/'); i > 0; i = rel.indexOf('/', i + 1)) if (this.opaqueDirs.has(rel.slice(0, i))) return null;
    }
    return lowerEntry(this.fmt, this.lowers, rel);
  }

  private setOpaque(rel: string): void {
    sys.lsetxattr(F(this.host(rel)), this.fmt.opaqueXattr, Buffer.from('y'));
    this.opaqueDirs.add(rel);
  }

  /** Overlay: a directory in the upper dir standing for the lower directory `low` (copy-up of its attributes). */
  private copyUpDir(rel: string, low: { host: string; st: fs.Stats }): void {
    const p = this.root + '/' + rel;
    fs.mkdirSync(F(p), (low.st.mode & 0o777) | 0o700);
    fs.lchownSync(F(p), low.st.uid, low.st.gid);
    this.copyXattrs(low.host, p);
    this.dirMeta.set(p, { mode: low.st.mode & 0o7777, mtime: low.st.mtimeMs / 1000 });
  }

  /** Overlay: a lower non-directory copied into the upper dir (for a hard link to it). */
  private copyUpFile(rel: string, low: { host: string; st: fs.Stats }): void {
    const p = this.root + '/' + rel;
    const st = low.st;
    if (st.isSymbolicLink()) fs.symlinkSync(F(readlinkBytes(low.host)), F(p));
    else if (st.isFile()) fs.copyFileSync(F(low.host), F(p), fs.constants.COPYFILE_FICLONE);
    else sys.mknod(F(p), st.mode & (sys.S_IFMT | 0o7777), Math.floor(st.rdev / 256) & 0xfff, (st.rdev & 0xff) | ((st.rdev >>> 12) & 0xfff00));
    fs.lchownSync(F(p), st.uid, st.gid);
    if (!st.isSymbolicLink()) fs.chmodSync(F(p), st.mode & 0o7777); // after chown, which clears setuid
    this.copyXattrs(low.host, p);
    fs.lutimesSync(F(p), st.atime, st.mtime);
  }

  // Raw, as stored (both sides are this format), but not the backend's own marks.
  private copyXattrs(from: string, to: string): void {
    let names: string[];
    try {
      names = sys.llistxattr(F(from));
    } catch {
      return;
    }
    for (const n of names) {
      if (xattrToLayer(this.fmt, n) === null) continue;
      const v = sys.lgetxattr(F(from), n);
      if (v) sys.lsetxattr(F(to), n, v);
    }
  }

  /**
   * Resolve a cleaned literal directory path to a real directory inside root, following
   * symlinks within root (overlay: through the lower layers too). Missing components are
   * created when `create` (0755, or overlay: a copy-up of the lower directory); without
   * `create`, null when some component does not exist, and an overlay path may resolve to
   * a directory only the lower layers have.
   */
  private resolveDir(lit: string, entry: string, create: true): string;
  private resolveDir(lit: string, entry: string, create: false): string | null;
  private resolveDir(lit: string, entry: string, create: boolean): string | null {
    if (lit === '') return '';
    const hit = this.dirCache.get(lit);
    if (hit !== undefined) return hit;
    // Longest cached ancestor, then walk the rest.
    let start = '';
    let base = lit;
    for (let i = lit.lastIndexOf('/'); i > 0; i = lit.lastIndexOf('/', i - 1)) {
      const h = this.dirCache.get(lit.slice(0, i));
      if (h !== undefined) {
        start = h;
        base = lit.slice(i + 1);
        break;
      }
    }
    const pending = base.split('/').reverse();
    let cur = start;
    let links = 0;
    let virtual = false; // overlay, !create: cur exists only in the lower layers
    while (pending.length) {
      const c = pending.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        const i = cur.lastIndexOf('/');
        cur = i < 0 ? '' : cur.slice(0, i);
        continue;
      }
      if (c.startsWith(WH_PREFIX)) this.fail(entry, `a whiteout name (${JSON.stringify(showBytes(c))}) is used as a directory`);
      const next = cur ? cur + '/' + c : c;
      const p = this.root + '/' + next;
      let st: fs.Stats | null;
      try {
        st = virtual ? null : lstatOrNull(p);
      } catch (err) {
        this.fail(entry, `cannot inspect parent ${JSON.stringify(showBytes(next))}`, err);
      }
      if (st !== null && this.overlay && isWhiteout(st)) {
        // Deleted by this layer: a directory made here starts empty (opaque).
        if (!create) return null;
        fs.unlinkSync(F(p));
        this.mkdirIn(entry, next, p);
        this.setOpaque(next);
        cur = next;
      } else if (st === null) {
        const low = this.overlay ? this.lower(next) : null;
        if (low?.st.isSymbolicLink()) {
          if (++links > MAX_LINKS) this.fail(entry, 'too many levels of symbolic links in its parents');
          const target = readlinkBytes(low.host);
          if (target.startsWith('/')) cur = '';
          const parts = target.split('/');
          for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
          virtual = false;
          continue;
        }
        if (low && !low.st.isDirectory()) this.fail(entry, `parent ${JSON.stringify(showBytes(next))} is not a directory`);
        if (!create) {
          if (!low) return null;
          virtual = true; // only in the lower layers: look further down without making it
        } else if (low) {
          try {
            this.copyUpDir(next, low);
          } catch (err) {
            this.fail(entry, `cannot create parent ${JSON.stringify(showBytes(next))}`, err);
          }
        } else this.mkdirIn(entry, next, p);
        cur = next;
      } else if (st.isDirectory()) {
        cur = next;
      } else if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) this.fail(entry, 'too many levels of symbolic links in its parents');
        const target = readlinkBytes(p);
        if (target.startsWith('/')) cur = ''; // absolute: restart at root, never the host's /
        const parts = target.split('/');
        for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
        continue;
      } else {
        this.fail(entry, `parent ${JSON.stringify(showBytes(next))} is not a directory`);
      }
      if (create) this.markWritten(cur);
    }
    if (!virtual) {
      if (this.dirCache.size >= DIR_CACHE_MAX) this.dirCache.clear();
      this.dirCache.set(lit, cur);
    }
    return cur;
  }

  private mkdirIn(entry: string, rel: string, p: string): void {
    try {
      fs.mkdirSync(F(p), 0o755);
    } catch (err) {
      this.fail(entry, `cannot create parent ${JSON.stringify(showBytes(rel))}`, err);
    }
  }

  /** Remove whatever is at host path p (a tree when it is a directory). */
  private remove(p: string, st: fs.Stats): void {
    if (st.isDirectory()) removeTree(p);
    else fs.unlinkSync(F(p));
    // A removed dir or symlink may be on a cached resolution path.
    if (st.isDirectory() || st.isSymbolicLink()) {
      this.dirCache.clear();
      this.removedAny = true;
      if (st.isDirectory() && this.opaqueDirs.size) {
        const rel = p.slice(this.root.length + 1);
        for (const d of this.opaqueDirs) if (d === rel || d.startsWith(rel + '/')) this.opaqueDirs.delete(d);
      }
    }
  }

  /** chown, or where the user namespace cannot hold the ids, keep the owner aside (owner.ts). */
  private own(p: string, uid: number, gid: number, kind: 'file' | 'dir' | 'other', replaced = false): void {
    setOwner(F(p), uid, gid, kind, replaced);
  }

  private ids(h: TarHeader): [number, number] {
    return this.opts.idMap ? this.opts.idMap(h.uid, h.gid) : [h.uid, h.gid];
  }

  private xattrs(p: string, h: TarHeader, entry: string): void {
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      const name = xattrToDisk(this.fmt, k); // the backend's own namespaces: escaped
      try {
        sys.lsetxattr(F(p), name, v);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Linux takes user.* xattrs on files and directories only: one on a symlink (or a device)
        // cannot exist here, so it is dropped, as moby's rootless apply drops what it may not set.
        const userOnSpecial = code === 'EPERM' && name.startsWith('user.') && h.type !== 'file' && h.type !== 'dir';
        if (k.startsWith('security.') || k.startsWith('trusted.') || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || userOnSpecial) {
          this.debug(`layer entry ${showBytes(entry)}: xattr ${k} not set (${code ?? (err as Error).message})`);
        } else if ((code === 'ENOSPC' && !this.diskFull()) || code === 'E2BIG' || code === 'ERANGE') {
          // The inode's room for xattrs is full (ENOSPC on ext4 with space left on the disk),
          // or one value is larger than the filesystem takes: the layer's doing, not the host's.
          throw new ContentError(`layer entry ${JSON.stringify(showBytes(entry))}: cannot set xattr ${k} (${v.length} bytes, ${h.xattrs.size} xattrs on the entry): more than the filesystem stores for one file (${code})`, {
            hint: 'the layer carries more extended attributes than this filesystem holds; rebuild it without them, or use a filesystem with larger xattr limits (XFS)',
            cause: err,
          });
        } else {
          this.fail(entry, `cannot set xattr ${k}`, err);
        }
      }
    }
  }

  /** Whether the filesystem of root is (nearly) out of space: an ENOSPC is then the disk's. */
  private diskFull(): boolean {
    try {
      const st = fs.statfsSync(F(this.root));
      return st.bavail * st.bsize < 1024 * 1024;
    } catch {
      return true;
    }
  }

  /** A directory entry over an existing directory: the xattrs the entry does not carry go. */
  private dropOtherXattrs(p: string, h: TarHeader): void {
    let names: string[];
    try {
      names = sys.llistxattr(F(p));
    } catch {
      return;
    }
    for (const n of names) {
      const layerName = xattrToLayer(this.fmt, n);
      if (layerName === null || h.xattrs?.has(layerName)) continue; // the format's own marks stay
      try {
        sys.lremovexattr(F(p), n);
      } catch (err) {
        this.debug(`layer entry ${showBytes(h.name)}: xattr ${n} not removed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
  }

  entry(h: TarHeader): void {
    if (this.needsLowers) return;
    const rel = cleanName(h.name);
    try {
      this.apply(h, rel);
    } catch (err) {
      if (err === NEEDS_LOWERS) return;
      if (err instanceof ImgError) throw err;
      this.fail(h.name, `cannot apply ${h.type}`, err);
    }
  }

  private apply(h: TarHeader, rel: string): void {
    this.cur = null;
    if (rel === '') {
      // './' : metadata of the root itself
      if (h.type === 'dir') this.dirEntry(h, '', this.root);
      else this.debug(`layer entry ${JSON.stringify(showBytes(h.name))}: non-directory at the root ignored`);
      return;
    }
    const slash = rel.lastIndexOf('/');
    const parentLit = slash < 0 ? '' : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    const parent = this.resolveDir(parentLit, h.name, true);

    if (base.startsWith(WH_PREFIX)) return this.whiteout(h, parent, base);

    const relRes = parent ? parent + '/' + base : base;
    const p = this.root + '/' + relRes;
    this.markWritten(relRes);

    if (h.type === 'dir') return this.dirEntry(h, relRes, p);

    if (h.type === 'link') {
      const src = this.resolveLinkTarget(h);
      this.create(
        p,
        () => fs.linkSync(F(src), F(p)),
        (st) => {
          const sst = fs.lstatSync(F(src));
          return st.ino === sst.ino && st.dev === sst.dev; // already that link
        },
      );
      return;
    }
    const [uid, gid] = this.ids(h);
    switch (h.type) {
      case 'file': {
        this.create(p, () => {
          this.fd = fs.openSync(F(p), O_FILE, 0o600);
        });
        this.pos = 0;
        this.holeAtEnd = false;
        this.cur = h;
        this.curHost = p;
        this.queued = this.queue.offThread && !h.xattrs && this.queue.filesOpen < MAX_QUEUED_FILES;
        return; // body and metadata follow in data()/endEntry()
      }
      case 'symlink':
        this.create(p, () => fs.symlinkSync(F(h.linkname), F(p)));
        if (this.chown) this.own(p, uid, gid, 'other');
        this.xattrs(p, h, h.name);
        fs.lutimesSync(F(p), h.mtime, h.mtime);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const fmt = h.type === 'char' ? sys.S_IFCHR : h.type === 'block' ? sys.S_IFBLK : sys.S_IFIFO;
        try {
          this.create(p, () => sys.mknod(F(p), fmt | (h.mode & 0o777), h.devmajor, h.devminor));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPERM' || code === 'EACCES') {
            this.debug(`layer entry ${showBytes(h.name)}: ${h.type} device ${h.devmajor}:${h.devminor} skipped (${code}: not permitted here)`);
            this.written.delete(relRes);
            this.skippedDevices++;
            return;
          }
          throw err;
        }
        if (this.chown) this.own(p, uid, gid, 'other');
        fs.chmodSync(F(p), h.mode); // p was just made by mknod: not a symlink
        this.xattrs(p, h, h.name);
        fs.lutimesSync(F(p), h.mtime, h.mtime);
        return;
      }
    }
  }

  /**
   * Create p optimistically (the common case is a fresh path: one syscall); when something
   * is there already, keep it if `keep` says so, else remove it and create again.
   * Returns whether p was (re)created.
   */
  private create(p: string, make: () => void, keep?: (st: fs.Stats) => boolean): boolean {
    try {
      make();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(F(p));
    if (keep?.(st)) return false;
    this.remove(p, st);
    make();
    return true;
  }

  private dirEntry(h: TarHeader, relRes: string, p: string): void {
    let existed = relRes === '';
    if (relRes !== '') {
      const st = lstatOrNull(p);
      if (st?.isDirectory()) existed = true;
      else {
        if (st) this.remove(p, st);
        // owner rwx until the end, so children can be created even under a 0555 dir
        fs.mkdirSync(F(p), (h.mode & 0o777) | 0o700);
        // Overlay: over a whiteout this layer made, the directory starts empty.
        if (st && this.overlay && isWhiteout(st)) this.setOpaque(relRes);
      }
    }
    if (this.chown) {
      const [uid, gid] = this.ids(h);
      this.own(p, uid, gid, 'dir', existed);
    }
    if (existed) this.dropOtherXattrs(p, h);
    this.xattrs(p, h, h.name);
    if (relRes !== '') {
      if (this.dirCache.size >= DIR_CACHE_MAX) this.dirCache.clear();
      this.dirCache.set(relRes, relRes);
    }
    // the last entry for a path wins; re-inserting keeps parents before children
    this.dirMeta.delete(p);
    this.dirMeta.set(p, { mode: h.mode, mtime: h.mtime });
  }

  private resolveLinkTarget(h: TarHeader): string {
    const t = cleanName(h.linkname);
    if (t === '') this.fail(h.name, 'hard link to the root directory');
    const slash = t.lastIndexOf('/');
    const parentLit = slash < 0 ? '' : t.slice(0, slash);
    const parent = this.resolveDir(parentLit, h.name, false);
    const base = slash < 0 ? t : t.slice(slash + 1);
    const missing: () => never = () => this.fail(h.name, `hard link target ${JSON.stringify(showBytes(h.linkname))} does not exist in the layer or its parents`);
    if (parent === null) missing();
    const rel = parent ? parent + '/' + base : base;
    let st = lstatOrNull(this.host(rel));
    if (this.overlay && (st === null || isWhiteout(st))) {
      // Not in this layer: a hard link to a lower layer's file links a copy of it here.
      const low = st === null ? this.lower(rel) : null;
      if (!low) missing();
      if (low.st.isDirectory()) this.fail(h.name, `hard link target ${JSON.stringify(showBytes(h.linkname))} is a directory`);
      this.resolveDir(parentLit, h.name, true);
      this.copyUpFile(rel, low);
      st = low.st;
    }
    if (!st) missing();
    if (st.isDirectory()) this.fail(h.name, `hard link target ${JSON.stringify(showBytes(h.linkname))} is a directory`);
    return this.host(rel);
  }

  private whiteout(h: TarHeader, parent: string, base: string): void {
    const dirHost = this.host(parent);
    if (base === WH_OPAQUE) return this.opaque(parent, dirHost);
    if (base.startsWith(WH_PREFIX + WH_PREFIX)) {
      this.debug(`layer entry ${showBytes(h.name)}: aufs metadata ignored`);
      return;
    }
    const name = base.slice(WH_PREFIX.length);
    if (name === '' || name === '.' || name === '..') this.fail(h.name, 'whiteout with an invalid name');
    const target = dirHost + '/' + name;
    const existing = lstatOrNull(target);
    if (existing) this.remove(target, existing);
    if (this.overlay) {
      // Only over something the lower layers show: readdir of a directory that is not
      // merged (only in this layer, or opaque) lists a whiteout as a name lookup cannot find.
      const rel = parent ? parent + '/' + name : name;
      if (this.lowers === null) this.blindWhiteouts.push(rel);
      else if (!this.lower(rel)) return;
      try {
        sys.mknod(F(target), sys.S_IFCHR, 0, 0);
      } catch (err) {
        this.fail(h.name, 'cannot create the overlay whiteout (0:0 char device)', err);
      }
      if (this.chown) {
        const [uid, gid] = this.ids(h);
        this.own(target, uid, gid, 'other');
      }
    }
  }

  /** `.wh..wh..opq` in directory `rel`: what this layer has not written below it goes. */
  private opaque(rel: string, dirHost: string): void {
    if (this.overlay) {
      removeWhiteoutsBelow(dirHost); // nothing lower is visible there now
      this.setOpaque(rel);
      if (rel === '') this.opaqueRoot();
      return;
    }
    // Native: prune the subtree, keeping this layer's entries and the directories they
    // were written through (and only what this layer wrote inside those).
    let removed = false;
    const pending = [rel];
    while (pending.length) {
      const d = pending.pop()!;
      const dHost = this.host(d);
      for (const name of readdirBytes(dHost)) {
        const childRel = d ? d + '/' + name : name;
        if (!this.written.has(childRel)) {
          removeTree(dHost + '/' + name);
          removed = true;
        } else if (lstatOrNull(dHost + '/' + name)?.isDirectory()) pending.push(childRel);
      }
    }
    if (removed) {
      this.dirCache.clear();
      this.removedAny = true;
    }
  }

  /**
   * Overlay: the kernel ignores the opaque mark on an upper root, so the root's lower
   * entries are hidden one by one: a whiteout for each one this layer has not written, and
   * the directories it has written made opaque (fuse-overlayfs, which honours the mark,
   * sees the same tree).
   */
  private opaqueRoot(): void {
    if (this.lowers === null) this.blind();
    const names = new Set<string>();
    for (const l of this.lowers) for (const n of readdirBytes(l)) names.add(n);
    this.opaqueDirs.delete('');
    for (const n of names) {
      if (!lowerEntry(this.fmt, this.lowers, n)) continue;
      const p = this.root + '/' + n;
      const st = lstatOrNull(p);
      if (st === null) sys.mknod(F(p), sys.S_IFCHR, 0, 0);
      else if (st.isDirectory()) this.setOpaque(n);
    }
    this.opaqueDirs.add('');
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return;
    const len = chunk.length;
    // All-zero 64 KiB windows become holes: a mostly-zero file costs neither disk nor write time.
    let runStart = 0; // start of the pending non-zero run
    for (let w = 0; w + HOLE <= len; w += HOLE) {
      if (chunk[w] !== 0 || chunk[w + HOLE - 1] !== 0 || !chunk.subarray(w, w + HOLE).equals(ZEROS)) continue;
      if (w > runStart) this.write(chunk, runStart, w);
      runStart = w + HOLE;
      this.holeAtEnd = true;
    }
    if (runStart < len) this.write(chunk, runStart, len);
    this.pos += len;
  }

  private write(chunk: Buffer, from: number, to: number): void {
    this.holeAtEnd = false;
    if (this.queued) return this.queue.write(this.fd, chunk, from, to, this.pos + from, this.cur!.name);
    let off = from;
    try {
      while (off < to) off += fs.writeSync(this.fd, chunk, off, to - off, this.pos + off);
    } catch (err) {
      this.fail(this.cur?.name ?? this.curHost, 'cannot write its data', err); // ENOSPC: a DiskFullError naming the entry
    }
  }

  endEntry(): void {
    const h = this.cur;
    if (!h || this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.cur = null;
    const [uid, gid] = this.chown ? this.ids(h) : [0, 0];
    let chown = this.chown;
    if (chown && !idsMapped(uid, gid)) {
      // The namespace cannot chown to these ids: root's on disk, the owner kept aside (owner.ts).
      this.own(this.curHost, uid, gid, 'file');
      chown = false;
    }
    if (this.queued) {
      this.queue.finish(fd, { chown, uid, gid, mode: h.mode, mtime: h.mtime, truncateTo: this.holeAtEnd ? this.pos : null }, h.name);
      return;
    }
    try {
      if (this.holeAtEnd) fs.ftruncateSync(fd, this.pos);
      if (chown) fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, h.mode); // after chown, which clears setuid/setgid
      this.xattrs(this.curHost, h, h.name);
      fs.futimesSync(fd, h.mtime, h.mtime);
    } catch (err) {
      if (err instanceof ImgError) throw err;
      this.fail(h.name, 'cannot set file metadata', err);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Directory modes and times last, deepest first, so children do not disturb them. */
  finish(): void {
    const dirs = [...this.dirMeta];
    for (let i = dirs.length - 1; i >= 0; i--) {
      const [host, d] = dirs[i];
      // chmod/utimes follow symlinks: when this layer replaced a dir or symlink somewhere,
      // make sure no component of the path has become a symlink since it was recorded.
      if (this.removedAny ? !this.realDirPath(host) : !lstatOrNull(host)?.isDirectory()) continue;
      fs.chmodSync(F(host), d.mode);
      fs.utimesSync(F(host), d.mtime, d.mtime);
    }
  }

  /** Whether every component of host below root is a real directory (no symlink). */
  private realDirPath(host: string): boolean {
    if (host === this.root) return true;
    const rel = host.slice(this.root.length + 1);
    let i = -1;
    do {
      i = rel.indexOf('/', i + 1);
      const st = lstatOrNull(this.root + '/' + (i < 0 ? rel : rel.slice(0, i)));
      if (!st || !st.isDirectory()) return false;
    } while (i >= 0);
    return true;
  }

  abort(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/**
 * Apply a layer stream (gzip, zstd or plain tar; detected) onto opts.root. Resolves with
 * the diffID (sha256 of the uncompressed tar, computed while applying) and its size.
 */
export async function applyLayer(layer: NodeJS.ReadableStream, opts: ApplyOptions): Promise<ApplyResult> {
  fs.mkdirSync(opts.root, { recursive: true });
  const queue = new LayerOpQueue(true); // the diffID and the regular files' writes
  const ex = new Extractor(opts, queue);
  const parser = new TarParser(ex);
  let size = 0;
  // A queued operation's failure, as the error naming its entry.
  const named = (err: unknown): Error => {
    if (!(err instanceof LayerOpFailure)) return err as Error;
    try {
      ex.queueFailed(err);
    } catch (e) {
      return e as Error;
    }
    return err as never; // queueFailed always throws
  };
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      queue.hash(chunk);
      size += chunk.length;
      try {
        parser.push(chunk);
        const failed = queue.failure();
        if (failed) ex.queueFailed(failed);
      } catch (err) {
        return cb(err as Error);
      }
      if (queue.pendingBytes < QUEUE_HIGH_WATER) return cb();
      queue.waitBelow(QUEUE_HIGH_WATER).then(
        () => cb(),
        (err) => cb(named(err)),
      );
    },
    final(cb) {
      try {
        parser.end();
      } catch (err) {
        return cb(err as Error);
      }
      // directory modes and times once every file in them is done
      queue.flush().then(
        () => {
          try {
            ex.finish();
          } catch (err) {
            return cb(err as Error);
          }
          cb();
        },
        (err) => cb(named(err)),
      );
    },
  });
  const src = layer instanceof Readable ? layer : new Readable().wrap(layer);
  try {
    await pipeline(src, new AutoDecompress(), sink);
  } finally {
    ex.abort();
    await queue.abort();
  }
  if (parser.entries === 0 && size === 0) {
    throw new ContentError('layer is empty', { hint: 'the blob has no data; fetch it again' });
  }
  const res: ApplyResult = { diffId: `sha256:${queue.digest()}`, size, skippedDevices: ex.skippedDevices };
  if (ex.needsLowers) res.needsLowers = true;
  else if (ex.blindWhiteouts.length) res.blindWhiteouts = ex.blindWhiteouts;
  return res;
}
