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
// - Whiteouts: `.wh.NAME` deletes NAME (native) or becomes a 0:0 char device (overlay);
//   `.wh..wh..opq` removes the directory's children not written by this layer (native) or sets
//   the opaque xattr (overlay).
// Not defended: another process changing `root` while we apply (no openat2/RESOLVE_IN_ROOT).
//
// Names are bytes: every path here is a byte string (util/bytenames.ts), passed to the
// kernel through fsPath(), so names that are not UTF-8 are written exactly as stored.
//
// The tar parser and file writes are synchronous inside a Writable's _write: with a file,
// socket or gunzip source each chunk (<=128 KiB of tar) is handled in its own turn of the
// event loop while decompression runs on the thread pool (gzip) or in a child (zstd); an
// in-memory source can run through without yielding. This is much faster than one promise
// per syscall for layers of many small files (bench/archive.ts: less CPU than tar -xzf),
// and memory stays bounded by the stream high-water marks whatever the layer size.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../images/types';
import { fsPath as F, readdirBytes, readdirTypedBytes, readlinkBytes, showBytes, toBytes } from '../util/bytenames';
import { ContentError, hostErrorClass, ImgError } from '../util/errors';
import { AutoDecompress } from './compression';
import * as sys from './sys';
import { TarParser, type TarHeader, type TarSink } from './tar';

export interface ApplyOptions {
  /** The snapshot dir (or overlay upper dir with the overlay whiteout format). */
  root: string;
  /**
   * native: whiteouts delete their target.
   * overlay: whiteouts become 0:0 char devices and opaque dirs get the opaque xattr, so the
   * directory can be used directly as an overlay upper/lower dir.
   */
  whiteoutFormat: 'overlay' | 'native';
  /** Remap tar ids before chown (unpack into a caller-owned dir). Implies chown. */
  idMap?: (uid: number, gid: number) => [number, number];
  /** chown to the tar uid/gid (true inside the user namespace). */
  sameOwner: boolean;
  onDebug?: (msg: string) => void;
  /** Extension: the opaque xattr name for the overlay format (default user.overlay.opaque, for userxattr mounts). */
  opaqueXattr?: string;
}

export interface ApplyResult {
  diffId: Digest;
  size: number; // uncompressed tar bytes
  skippedDevices: number; // device nodes the caller may not create (mknod EPERM without privileges)
}

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const MAX_LINKS = 255;
const HOLE = 64 * 1024;
const ZEROS = Buffer.alloc(HOLE);
const O_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

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

interface DirMeta {
  mode: number;
  mtime: number;
}

class Extractor implements TarSink {
  private readonly root: string;
  // literal (cleaned) parent path from the tar → resolved root-relative path of a real dir
  private dirCache = new Map<string, string>();
  // resolved root-relative paths this layer wrote (for opaque dirs: keep these children)
  private written = new Set<string>();
  private dirMeta = new Map<string, DirMeta>(); // host path → final mode/times
  private removedAny = false; // a dir or symlink was replaced: re-check paths in finish()
  private fd = -1;
  private pos = 0;
  private holeAtEnd = false;
  private cur: TarHeader | null = null;
  private curHost = '';
  private readonly chown: boolean;
  private readonly debug: (m: string) => void;
  private readonly opaqueXattr: string;
  skippedDevices = 0;

  constructor(private readonly opts: ApplyOptions) {
    this.root = toBytes(path.resolve(opts.root));
    this.chown = opts.sameOwner || !!opts.idMap;
    this.debug = opts.onDebug ?? (() => {});
    this.opaqueXattr = opts.opaqueXattr ?? 'user.overlay.opaque';
  }

  private host(rel: string): string {
    return rel ? this.root + '/' + rel : this.root;
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

  /**
   * Resolve a cleaned literal directory path to a real directory inside root, following
   * symlinks within root. Missing components are created (0755) when `create`.
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
    while (pending.length) {
      const c = pending.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        const i = cur.lastIndexOf('/');
        cur = i < 0 ? '' : cur.slice(0, i);
        continue;
      }
      const next = cur ? cur + '/' + c : c;
      const p = this.root + '/' + next;
      let st: fs.Stats | null;
      try {
        st = lstatOrNull(p);
      } catch (err) {
        this.fail(entry, `cannot inspect parent ${JSON.stringify(showBytes(next))}`, err);
      }
      if (st === null) {
        if (!create) return null;
        try {
          fs.mkdirSync(F(p), 0o755);
        } catch (err) {
          this.fail(entry, `cannot create parent ${JSON.stringify(showBytes(next))}`, err);
        }
        cur = next;
      } else if (st.isDirectory()) {
        cur = next;
      } else if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) this.fail(entry, 'too many levels of symbolic links in its parents');
        const target = readlinkBytes(p);
        if (target.startsWith('/')) cur = ''; // absolute: restart at root, never the host's /
        const parts = target.split('/');
        for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
      } else {
        this.fail(entry, `parent ${JSON.stringify(showBytes(next))} is not a directory`);
      }
    }
    this.dirCache.set(lit, cur);
    return cur;
  }

  /** Remove whatever is at host path p (a tree when it is a directory). */
  private remove(p: string, st: fs.Stats): void {
    if (st.isDirectory()) removeTree(p);
    else fs.unlinkSync(F(p));
    // A removed dir or symlink may be on a cached resolution path.
    if (st.isDirectory() || st.isSymbolicLink()) {
      this.dirCache.clear();
      this.removedAny = true;
    }
  }

  private ids(h: TarHeader): [number, number] {
    return this.opts.idMap ? this.opts.idMap(h.uid, h.gid) : [h.uid, h.gid];
  }

  private xattrs(p: string, h: TarHeader, entry: string): void {
    if (!h.xattrs) return;
    for (const [k, v] of h.xattrs) {
      try {
        sys.lsetxattr(F(p), k, v);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (k.startsWith('security.') || k.startsWith('trusted.') || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
          this.debug(`layer entry ${showBytes(entry)}: xattr ${k} not set (${code ?? (err as Error).message})`);
        } else {
          this.fail(entry, `cannot set xattr ${k}`, err);
        }
      }
    }
  }

  entry(h: TarHeader): void {
    const rel = cleanName(h.name);
    try {
      this.apply(h, rel);
    } catch (err) {
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
    this.written.add(relRes);

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
        return; // body and metadata follow in data()/endEntry()
      }
      case 'symlink':
        this.create(p, () => fs.symlinkSync(F(h.linkname), F(p)));
        if (this.chown) fs.lchownSync(F(p), uid, gid);
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
        if (this.chown) fs.lchownSync(F(p), uid, gid);
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
    // owner rwx until the end, so children can be created even under a 0555 dir
    if (relRes !== '') this.create(p, () => fs.mkdirSync(F(p), (h.mode & 0o777) | 0o700), (st) => st.isDirectory());
    if (this.chown) {
      const [uid, gid] = this.ids(h);
      fs.lchownSync(F(p), uid, gid);
    }
    this.xattrs(p, h, h.name);
    if (relRes !== '') this.dirCache.set(relRes, relRes);
    // the last entry for a path wins; re-inserting keeps parents before children
    this.dirMeta.delete(p);
    this.dirMeta.set(p, { mode: h.mode, mtime: h.mtime });
  }

  private resolveLinkTarget(h: TarHeader): string {
    const t = cleanName(h.linkname);
    if (t === '') this.fail(h.name, 'hard link to the root directory');
    const slash = t.lastIndexOf('/');
    const parent = this.resolveDir(slash < 0 ? '' : t.slice(0, slash), h.name, false);
    const base = slash < 0 ? t : t.slice(slash + 1);
    const src = parent === null ? '' : this.host(parent ? parent + '/' + base : base);
    const st = parent === null ? null : lstatOrNull(src);
    if (!st) this.fail(h.name, `hard link target ${JSON.stringify(showBytes(h.linkname))} does not exist in the layer or its parents`);
    if (st.isDirectory()) this.fail(h.name, `hard link target ${JSON.stringify(showBytes(h.linkname))} is a directory`);
    return src;
  }

  private whiteout(h: TarHeader, parent: string, base: string): void {
    const dirHost = this.host(parent);
    if (base === WH_OPAQUE) {
      if (this.opts.whiteoutFormat === 'overlay') {
        sys.lsetxattr(F(dirHost), this.opaqueXattr, Buffer.from('y'));
        return;
      }
      // Opaque applies to lower content only: keep what this layer already wrote there.
      let removed = false;
      for (const name of readdirBytes(dirHost)) {
        const childRel = parent ? parent + '/' + name : name;
        if (this.written.has(childRel)) continue;
        removeTree(dirHost + '/' + name);
        removed = true;
      }
      if (removed) {
        this.dirCache.clear();
        this.removedAny = true;
      }
      return;
    }
    if (base.startsWith(WH_PREFIX + WH_PREFIX)) {
      this.debug(`layer entry ${showBytes(h.name)}: aufs metadata ignored`);
      return;
    }
    const name = base.slice(WH_PREFIX.length);
    if (name === '' || name === '.' || name === '..') this.fail(h.name, 'whiteout with an invalid name');
    const target = dirHost + '/' + name;
    const existing = lstatOrNull(target);
    if (this.opts.whiteoutFormat === 'overlay') {
      if (existing) this.remove(target, existing);
      try {
        sys.mknod(F(target), sys.S_IFCHR, 0, 0);
      } catch (err) {
        this.fail(h.name, 'cannot create the overlay whiteout (0:0 char device)', err);
      }
      if (this.chown) {
        const [uid, gid] = this.ids(h);
        fs.lchownSync(F(target), uid, gid);
      }
      return;
    }
    if (existing) this.remove(target, existing);
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
    let off = from;
    try {
      while (off < to) off += fs.writeSync(this.fd, chunk, off, to - off, this.pos + off);
    } catch (err) {
      this.fail(this.cur?.name ?? this.curHost, 'cannot write its data', err); // ENOSPC: a DiskFullError naming the entry
    }
    this.holeAtEnd = false;
  }

  endEntry(): void {
    const h = this.cur;
    if (!h || this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.cur = null;
    try {
      if (this.holeAtEnd) fs.ftruncateSync(fd, this.pos);
      if (this.chown) {
        const [uid, gid] = this.ids(h);
        fs.fchownSync(fd, uid, gid);
      }
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
  const ex = new Extractor(opts);
  const parser = new TarParser(ex);
  const hash = createHash('sha256');
  let size = 0;
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      try {
        parser.push(chunk);
      } catch (err) {
        return cb(err as Error);
      }
      cb();
    },
    final(cb) {
      try {
        parser.end();
        ex.finish();
      } catch (err) {
        return cb(err as Error);
      }
      cb();
    },
  });
  const src = layer instanceof Readable ? layer : new Readable().wrap(layer);
  try {
    await pipeline(src, new AutoDecompress(), sink);
  } finally {
    ex.abort();
  }
  if (parser.entries === 0 && size === 0) {
    throw new ContentError('layer is empty', { hint: 'the blob has no data; fetch it again' });
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size, skippedDevices: ex.skippedDevices };
}
