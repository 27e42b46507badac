// Changes of a snapshot, and the layer tar that carries them.
//
// overlayChanges(upper, format): the upper dir of an overlay mount *is* the change set
// (overlay-format.ts says how it is stored):
//   - a 0:0 char device NAME (or a fuse-overlayfs `.wh.NAME` file) → delete of NAME,
//     except in an opaque directory, where nothing lower is visible to delete
//   - an opaque directory (its lower contents hidden) → that directory, opaque; an opaque
//     upper root → '/' opaque
//   - anything else → 'add' (an upper dir alone cannot tell add from modify; the layer
//     entry is the same either way)
//   redirect_dir/metacopy upper dirs are not supported (img never mounts with them).
//
// compareDirs(lower, upper): a native diff of two full trees. A path is
//   - 'delete' when only in lower (its subtree is not walked),
//   - 'add' when only in upper (and so is everything under it),
//   - 'modify' when in both and any of these differ: file type, permission bits (07777),
//     uid, gid, xattrs; symlink target; device number; for regular files size or mtime (ns).
//     A directory's mtime does not count, as in BuildKit's differs (continuity's sameFile):
//     it changes with any entry added or removed under it, and writeLayer writes it anyway
//     as the parent of such an entry. Two regular files that are the same inode are
//     equal. When size and mtime are equal but either mtime has zero nanoseconds (a
//     coarse timestamp, e.g. restored from a tar, so a same-second rewrite would not
//     show), the contents are compared byte for byte.
//   Children of a directory present on both sides are walked in both.
//
// Walks are iterative (no recursion limit) and yield paths in sorted order (by bytes),
// parents first. Paths are byte strings (util/bytenames.ts): names that are not UTF-8
// go into the layer exactly as they are on disk.
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { fsPath as F, readdirBytes, readdirTypedBytes, readlinkBytes, showBytes, toBytes } from '../util/bytenames';
import { ContentError, HostError } from '../util/errors';
import { InodePaths } from './inode-paths';
import { OWNER_XATTR, parseKeptOwner } from './owner';
import { isOpaqueDir, isWhiteout, NATIVE_FORMAT, WH_OPAQUE, WH_PREFIX, xattrToLayer, type DiskFormat } from './overlay-format';
import * as sys from './sys';
import { encodeHeader, END_OF_ARCHIVE, padding, type EntryType, type WriteHeader } from './tar';

export interface Change {
  path: string; // '/a/b', a byte string
  kind: 'add' | 'modify' | 'delete';
}

const WH = WH_PREFIX;
const WH_OPQ = WH_OPAQUE;

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface UpperItem {
  name: string; // effective name
  kind: 'delete' | 'entry';
}

export async function* overlayChanges(upperDir: string, format: DiskFormat): AsyncIterable<Change & { opaque?: boolean }> {
  const root = toBytes(upperDir.replace(/\/+$/, ''));
  const list = (rel: string): { items: UpperItem[]; opaque: boolean } => {
    const dir = rel ? root + '/' + rel : root;
    const opaque = isOpaqueDir(format, dir);
    const items: UpperItem[] = [];
    for (const name of readdirBytes(dir)) {
      if (name.startsWith(WH + WH)) continue; // the opaque marker, aufs/overlay metadata: never content
      if (name.startsWith(WH)) {
        if (!opaque) items.push({ name: name.slice(WH.length), kind: 'delete' });
      } else items.push({ name, kind: 'entry' });
    }
    items.sort((a, b) => byName(a.name, b.name));
    return { items, opaque };
  };
  const top = list('');
  if (top.opaque) yield { path: '/', kind: 'add', opaque: true };
  const stack: Array<{ rel: string; items: UpperItem[]; opaque: boolean; i: number }> = [{ rel: '', ...top, i: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.i >= top.items.length) {
      stack.pop();
      continue;
    }
    const it = top.items[top.i++];
    const rel = top.rel ? top.rel + '/' + it.name : it.name;
    if (it.kind === 'delete') {
      yield { path: '/' + rel, kind: 'delete' };
      continue;
    }
    const p = root + '/' + rel;
    const st = fs.lstatSync(F(p));
    if (isWhiteout(st)) {
      if (!top.opaque) yield { path: '/' + rel, kind: 'delete' };
      continue;
    }
    if (st.isDirectory()) {
      const sub = list(rel);
      yield sub.opaque ? { path: '/' + rel, kind: 'add', opaque: true } : { path: '/' + rel, kind: 'add' };
      stack.push({ rel, ...sub, i: 0 });
      continue;
    }
    yield { path: '/' + rel, kind: 'add' };
  }
}

function xattrsOf(p: string): string {
  const fp = F(p);
  const names = sys.llistxattr(fp);
  if (names.length === 0) return '';
  return names
    .sort()
    .map((n) => `${n}=${sys.lgetxattr(fp, n)?.toString('hex') ?? ''}`)
    .join('\0');
}

function sameContent(a: string, b: string, size: number): boolean {
  if (size === 0) return true;
  const fa = fs.openSync(F(a), 'r');
  const fb = fs.openSync(F(b), 'r');
  try {
    const ba = Buffer.allocUnsafe(256 * 1024);
    const bb = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const na = fs.readSync(fa, ba, 0, ba.length, null);
      const nb = fs.readSync(fb, bb, 0, bb.length, null);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

function changed(lp: string, up: string, l: fs.BigIntStats, u: fs.BigIntStats): boolean {
  if ((l.mode & 0o170000n) !== (u.mode & 0o170000n)) return true;
  if (l.dev === u.dev && l.ino === u.ino) return false;
  if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid) return true;
  if (u.isSymbolicLink()) {
    if (readlinkBytes(lp) !== readlinkBytes(up)) return true;
  } else if (u.isCharacterDevice() || u.isBlockDevice()) {
    if (l.rdev !== u.rdev) return true;
  } else if (u.isFile()) {
    if (l.size !== u.size || l.mtimeNs !== u.mtimeNs) return true;
    if (l.mtimeNs % 1_000_000_000n === 0n || u.mtimeNs % 1_000_000_000n === 0n) {
      if (!sameContent(lp, up, Number(u.size))) return true;
    }
  }
  return xattrsOf(lp) !== xattrsOf(up);
}

export async function* compareDirs(lowerDir: string | null, upperDir: string): AsyncIterable<Change> {
  const lroot = lowerDir === null ? null : toBytes(lowerDir.replace(/\/+$/, ''));
  const uroot = toBytes(upperDir.replace(/\/+$/, ''));
  interface Frame {
    rel: string;
    names: string[]; // merged, sorted
    lower: Set<string> | null;
    upperDirs: Set<string>; // upper names that are directories (from readdir's d_type)
    upper: Set<string>;
    i: number;
  }
  const frame = (rel: string, withLower: boolean): Frame => {
    const ents = readdirTypedBytes(rel ? uroot + '/' + rel : uroot);
    const un: string[] = [];
    const upperDirs = new Set<string>();
    for (const e of ents) {
      un.push(e.name);
      if (e.isDirectory()) upperDirs.add(e.name);
    }
    const ln = withLower && lroot !== null ? readdirBytes(rel ? lroot + '/' + rel : lroot) : null;
    const names = ln ? [...new Set([...un, ...ln])] : un;
    names.sort(byName);
    return { rel, names, lower: ln ? new Set(ln) : null, upperDirs, upper: new Set(un), i: 0 };
  };
  const stack: Frame[] = [frame('', lroot !== null)];
  while (stack.length) {
    const f = stack[stack.length - 1];
    if (f.i >= f.names.length) {
      stack.pop();
      continue;
    }
    const name = f.names[f.i++];
    const rel = f.rel ? f.rel + '/' + name : name;
    const inLower = f.lower?.has(name) ?? false;
    if (!f.upper.has(name)) {
      yield { path: '/' + rel, kind: 'delete' };
      continue;
    }
    if (!inLower) {
      // an add needs no stat here (writeLayer stats it); readdir's type says whether to descend
      yield { path: '/' + rel, kind: 'add' };
      if (f.upperDirs.has(name)) stack.push(frame(rel, false));
      continue;
    }
    const up = uroot + '/' + rel;
    const ust = fs.lstatSync(F(up), { bigint: true });
    const lp = lroot + '/' + rel;
    const lst = fs.lstatSync(F(lp), { bigint: true });
    if (changed(lp, up, lst, ust)) yield { path: '/' + rel, kind: 'modify' };
    if (ust.isDirectory()) stack.push(frame(rel, lst.isDirectory()));
  }
}

// ---------------------------------------------------------------- writeLayer

function typeOf(st: fs.Stats): EntryType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return null; // socket: tar cannot carry it
}

function major(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}

// Whether an upper directory that also exists in the lower layers is there only because
// overlayfs copied it up (an entry under it changed, or it was touched): the same type,
// permission bits, owner and layer xattrs as the lower one. Such a directory is no change
// of its own — BuildKit's overlay differ leaves it out, its mtime not counting — and
// writeLayer still writes it as the parent of any entry under it.
export function copiedUpOnly(format: DiskFormat, lowerPath: string, upperPath: string, lower: fs.Stats, upper: fs.Stats): boolean {
  if (!lower.isDirectory() || !upper.isDirectory()) return false;
  if (lower.mode !== upper.mode) return false;
  const l = layerMeta(lowerPath, format, lower);
  const u = layerMeta(upperPath, format, upper);
  if (l.uid !== u.uid || l.gid !== u.gid) return false;
  const xs = (m: LayerMeta) => (m.xattrs ?? []).map(([n, v]) => `${n}=${v.toString('hex')}`).join('\0');
  return xs(l) === xs(u);
}

interface LayerMeta {
  uid: number;
  gid: number;
  xattrs: Array<[string, Buffer]> | undefined;
}

// What the layer records of p besides its type, mode and times: the owner (the one kept in
// OWNER_XATTR where the user namespace could not chown, owner.ts, else the one on disk) and
// the layer's xattrs, names as the layer spells them (format: unescaped), the backend's and
// img's own marks left out.
function layerMeta(p: string, format: DiskFormat, st: { uid: number; gid: number }): LayerMeta {
  const meta: LayerMeta = { uid: st.uid, gid: st.gid, xattrs: undefined };
  if (!sys.xattrSupported()) return meta;
  const fp = F(p);
  let names: string[];
  try {
    names = sys.llistxattr(fp);
  } catch {
    return meta;
  }
  const out: Array<[string, Buffer]> = [];
  for (const n of names) {
    if (n === OWNER_XATTR) {
      const kept = parseKeptOwner(sys.lgetxattr(fp, n));
      if (kept) ({ uid: meta.uid, gid: meta.gid } = kept);
      continue;
    }
    const name = xattrToLayer(format, n);
    if (name === null) continue;
    const v = sys.lgetxattr(fp, n);
    if (v) out.push([name, v]);
  }
  if (out.length > 0) meta.xattrs = out.sort((a, b) => byName(a[0], b[0]));
  return meta;
}

const CHUNK = 1024 * 1024;

// writeLayer's chunk buffers, taken back from a consumer that says it no longer reads one
// (the parallel gzip, once it has compressed it): a big file then costs a few buffers, not a
// fresh MiB per MiB that waits for V8 to collect it. Only for streams of writeLayer.
const takeBack = new WeakMap<NodeJS.ReadableStream, (chunk: Buffer) => void>();
export function layerChunkReturn(tar: NodeJS.ReadableStream): ((chunk: Buffer) => void) | undefined {
  return takeBack.get(tar);
}
const SPARE_CHUNKS = 4;

/**
 * The layer tar of `changes`, reading contents from sourceRoot. Entries come in the order
 * of `changes` (sorted when they come from overlayChanges/compareDirs); a missing parent
 * directory of a change is written first (from sourceRoot). Headers: ustar with numeric
 * uid/gid, no uname/gname, mtime in whole seconds (clamped to sourceDateEpoch when given),
 * a PAX header only for long/non-ASCII names, big sizes/ids and xattrs. Files with several
 * links in this layer become hard-link entries to the first path written.
 * `prefix` ("linux_amd64/") goes before every name and hard-link target, and
 * `trailer: false` leaves out the end-of-archive blocks: one tar of several
 * trees (a multi-platform rootfs tar) is such streams one after another.
 * `format` says how sourceRoot stores xattrs (overlay-format.ts): a snapshot's diskFormat
 * for its diffRoot (an overlay upper dir holds escaped names and the backend's own marks),
 * native (the default) for a merged tree, where a mount shows xattrs as they are.
 */
export function writeLayer(
  changes: AsyncIterable<Change & { opaque?: boolean }>,
  sourceRoot: string,
  opts: { format?: DiskFormat; sourceDateEpoch?: number; prefix?: string; trailer?: boolean } = {},
): NodeJS.ReadableStream {
  const root = toBytes(sourceRoot.replace(/\/+$/, ''));
  const format = opts.format ?? NATIVE_FORMAT;
  const it = changes[Symbol.asyncIterator]();
  const epoch = opts.sourceDateEpoch;
  const dirsWritten = new Set<string>();
  const links = new InodePaths(); // hard links: inode → the first path written
  const spare: Buffer[] = [];
  const lent = new WeakSet<object>(); // our chunks pushed and not given back
  let buf: Buffer = Buffer.allocUnsafe(CHUNK);
  let fill = 0;
  let file: { fd: number; left: number; pad: number; rel: string } | null = null;
  let busy = false;
  let finished = false;

  const mtimeOf = (st: fs.Stats): number => {
    const t = Math.floor(st.mtimeMs / 1000);
    return epoch !== undefined && t > epoch ? epoch : t;
  };

  // _read may come while pump() awaits (or from a nextTick before pump's promise settles):
  // remember it in `again` and run pump once more, or the stream would stall.
  let again = false;
  const kick = (): void => {
    busy = true;
    again = false;
    pump().then(
      () => {
        busy = false;
        if (again && !finished) kick();
      },
      (err) => {
        busy = false;
        if (file) fs.closeSync(file.fd);
        file = null;
        out.destroy(err);
      },
    );
  };
  const out = new Readable({
    highWaterMark: 2 * CHUNK,
    read() {
      if (finished) return;
      if (busy) again = true;
      else kick();
    },
    destroy(err, cb) {
      if (file) fs.closeSync(file.fd);
      file = null;
      void it.return?.();
      cb(err);
    },
  });

  // Returns false when the consumer wants no more for now.
  const flush = (): boolean => {
    if (fill === 0) return true;
    const b = buf.subarray(0, fill);
    lent.add(buf.buffer);
    buf = spare.pop() ?? Buffer.allocUnsafe(CHUNK);
    fill = 0;
    return out.push(b);
  };
  // Chunks go out whole (CHUNK bytes, only the last one shorter): the parallel gzip compresses
  // a whole chunk in place, where one cut short would be copied together with the next.
  const append = (b: Buffer): boolean => {
    let ok = true;
    for (let off = 0; off < b.length; ) {
      if (fill === buf.length) ok = flush() && ok;
      const n = Math.min(b.length - off, buf.length - fill);
      b.copy(buf, fill, off, off + n);
      fill += n;
      off += n;
    }
    return ok;
  };

  takeBack.set(out, (chunk) => {
    if (spare.length < SPARE_CHUNKS && chunk.buffer.byteLength === CHUNK && lent.delete(chunk.buffer)) spare.push(Buffer.from(chunk.buffer, 0, CHUNK));
  });

  const prefix = opts.prefix ?? '';
  const scratch = Buffer.alloc(512); // one header block; append copies it at once
  const header = (h: WriteHeader): boolean =>
    append(encodeHeader(prefix ? { ...h, name: prefix + h.name, linkname: h.type === 'link' ? prefix + h.linkname : h.linkname } : h, scratch));

  const entryFor = (rel: string, opaque: boolean): boolean => {
    const p = root + '/' + rel;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(F(p));
    } catch (err) {
      throw new HostError(`cannot read ${JSON.stringify(showBytes('/' + rel))} for the layer: ${(err as Error).message}`, {
        hint: 'the snapshot changed while the layer was written',
        cause: err,
      });
    }
    const type = typeOf(st);
    if (!type) return true;
    const meta = layerMeta(p, format, st);
    const h: WriteHeader = {
      name: rel,
      type,
      mode: st.mode & 0o7777,
      uid: meta.uid,
      gid: meta.gid,
      size: 0,
      mtime: mtimeOf(st),
      xattrs: meta.xattrs,
    };
    if (type === 'dir') {
      dirsWritten.add(rel);
      let ok = header(h);
      if (opaque) ok = header({ name: rel + '/' + WH_OPQ, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: h.mtime }) && ok;
      return ok;
    }
    if (type === 'symlink') h.linkname = readlinkBytes(p);
    else if (type === 'char' || type === 'block') {
      h.devmajor = major(st.rdev);
      h.devminor = minor(st.rdev);
    } else if (type === 'file') {
      if (st.nlink > 1) {
        const first = links.get(st.dev, st.ino);
        if (first !== undefined) return header({ ...h, type: 'link', linkname: first });
        links.add(st.dev, st.ino, rel);
      }
      h.size = st.size;
      if (st.size > 0) file = { fd: fs.openSync(F(p), 'r'), left: st.size, pad: padding(st.size), rel };
    }
    return header(h);
  };

  const ensureParents = (rel: string): boolean => {
    let ok = true;
    const missing: string[] = [];
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      const d = rel.slice(0, i);
      if (dirsWritten.has(d)) break;
      missing.push(d);
    }
    for (let i = missing.length - 1; i >= 0; i--) ok = entryFor(missing[i], false) && ok;
    return ok;
  };

  // Fill the buffer with file bytes; returns false when the consumer is full.
  const body = (): boolean => {
    const f = file!;
    while (f.left > 0) {
      if (fill === buf.length && !flush()) return false;
      const want = Math.min(buf.length - fill, f.left);
      const n = fs.readSync(f.fd, buf, fill, want, null);
      if (n === 0) {
        throw new ContentError(`${JSON.stringify(showBytes('/' + f.rel))} shrank while the layer was written`, {
          hint: 'do not modify the snapshot while a layer is created',
        });
      }
      fill += n;
      f.left -= n;
    }
    fs.closeSync(f.fd);
    file = null;
    if (f.pad) return append(END_OF_ARCHIVE.subarray(0, f.pad));
    return true;
  };

  const pump = async (): Promise<void> => {
    for (;;) {
      if (file && !body()) return;
      if (fill === buf.length && !flush()) return;
      const n = await it.next();
      if (n.done) {
        if (opts.trailer !== false) append(END_OF_ARCHIVE);
        flush();
        finished = true;
        out.push(null);
        return;
      }
      const c = n.value;
      const rel = c.path.replace(/^\/+/, '').replace(/\/+$/, '');
      if (!rel) {
        // The root itself: only an opaque root says something (everything lower is gone).
        if (c.opaque && !header({ name: WH_OPQ, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: epoch !== undefined ? Math.min(0, epoch) : 0 })) return;
        continue;
      }
      let ok = ensureParents(rel);
      if (c.kind === 'delete') {
        const i = rel.lastIndexOf('/');
        const wh = (i < 0 ? '' : rel.slice(0, i + 1)) + WH + rel.slice(i + 1);
        ok = header({ name: wh, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: epoch !== undefined ? Math.min(0, epoch) : 0 }) && ok;
      } else {
        ok = entryFor(rel, !!c.opaque) && ok;
      }
      if (!ok && !file) return;
    }
  };

  return out;
}
