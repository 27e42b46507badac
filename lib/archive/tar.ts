// A small tar codec, synchronous and allocation-light, for the two hot paths:
// applying layers (parse headers, hand file bodies to a sink chunk by chunk) and
// writing layers (encode ustar headers, PAX records when ustar cannot hold a value).
// Reads ustar, GNU (long names 'L'/'K') and PAX ('x'/'g', SCHILY.xattr.*).
// Why not tar-stream: its per-entry streams and string PAX values cost time and lose
// binary xattr values; a header codec is ~300 lines (see bench/archive.ts for figures).
// Names and link names are byte strings (util/bytenames.ts): whatever bytes the
// archive holds, UTF-8 or not, come out and go back in unchanged.
import { showBytes } from '../util/bytenames';
import { ContentError, UnsupportedError } from '../util/errors';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string; // as stored (not yet normalized), a byte string
  type: EntryType;
  mode: number; // permission + setuid/setgid/sticky bits (07777)
  uid: number;
  gid: number;
  size: number; // body size (0 except for files)
  mtime: number; // seconds, may carry a fraction (PAX)
  linkname: string; // a byte string
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer> | null;
}

const BLOCK = 512;
// PAX and GNU long-name bodies are buffered: what comes before one entry (however many
// headers carry it) and the global PAX records may each hold this much. Go's archive/tar
// (docker, containerd) refuses a PAX or long-name header above 1 MiB; no name, link or
// xattr set Linux can store comes near it.
const MAX_META = 1024 * 1024;

/** What the parser calls; file bodies arrive in order, between entry() and its next call. */
export interface TarSink {
  entry(h: TarHeader): void;
  data(chunk: Buffer): void; // body bytes of the last 'file' entry
  endEntry(): void; // after the last body byte of every entry (also size-0 ones)
}

const enum State {
  Header,
  Body,
  Padding,
  Meta,
  Done,
}

/** A NUL-terminated field as a byte string. */
function cstr(buf: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && buf[end] !== 0) end++;
  return buf.toString('latin1', off, end);
}

function num(buf: Buffer, off: number, len: number): number {
  // base-256 (GNU/star extension) when the high bit is set
  if (buf[off] & 0x80) {
    let v = buf[off] & 0x7f;
    if (buf[off] & 0x40) throw new ContentError('tar header has a negative number', { hint: 'the layer is corrupt' });
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i];
    return v;
  }
  let v = 0;
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++; // leading blanks
  for (; i < end; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function checksumOk(buf: Buffer, off: number): boolean {
  const stored = num(buf, off + 148, 8);
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : buf[off + i];
    u += c;
    s += c > 127 ? c - 256 : c;
  }
  return stored === u || stored === s;
}

function isZeroBlock(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

function typeOf(flag: number, name: string): EntryType | 'meta' | 'unsupported' {
  switch (flag) {
    case 0: // old tar: NUL
    case 0x30: // '0'
    case 0x37: // '7' contiguous
      return name.endsWith('/') ? 'dir' : 'file';
    case 0x31:
      return 'link';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char';
    case 0x34:
      return 'block';
    case 0x35:
      return 'dir';
    case 0x36:
      return 'fifo';
    case 0x78: // 'x'
    case 0x67: // 'g'
    case 0x4c: // 'L'
    case 0x4b: // 'K'
      return 'meta';
    default:
      return 'unsupported';
  }
}

function parsePax(buf: Buffer, into: Map<string, Buffer>): void {
  let off = 0;
  while (off < buf.length) {
    let sp = off;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!len || len < 0 || off + len > buf.length) {
      if (buf[off] === 0) return; // NUL padding
      throw new ContentError('tar has a malformed PAX header record', { hint: 'the layer is corrupt' });
    }
    const rec = buf.subarray(sp + 1, off + len - 1); // without trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq > 0) into.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
}

/**
 * Streaming tar parser: feed chunks with push(); it calls the sink synchronously.
 * Entries' bodies are never buffered (only PAX/GNU metadata bodies are).
 */
export class TarParser {
  private state = State.Header;
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private remaining = 0; // body or meta bytes left
  private pad = 0;
  private meta: Buffer[] = [];
  private metaKind = 0;
  private pax: Map<string, Buffer> | null = null;
  private globalPax: Map<string, Buffer> | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;
  private zeroBlocks = 0;
  private metaBytes = 0; // metadata bodies read since the last entry
  private globalBytes = 0; // global PAX bodies read in all
  private lastName: string | null = null; // the last entry's name, for messages
  entries = 0;

  constructor(private readonly sink: TarSink) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      switch (this.state) {
        case State.Done:
          return; // trailing zero blocks / padding after end-of-archive
        case State.Header: {
          // fast path: whole header inside the chunk
          let buf: Buffer;
          let hoff: number;
          if (this.hdrFill === 0 && len - off >= BLOCK) {
            buf = chunk;
            hoff = off;
            off += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.hdrFill, len - off);
            chunk.copy(this.hdr, this.hdrFill, off, off + n);
            this.hdrFill += n;
            off += n;
            if (this.hdrFill < BLOCK) return;
            this.hdrFill = 0;
            buf = this.hdr;
            hoff = 0;
          }
          this.header(buf, hoff);
          break;
        }
        case State.Body: {
          const n = Math.min(this.remaining, len - off);
          this.sink.data(off === 0 && n === len ? chunk : chunk.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.sink.endEntry();
            this.state = this.pad ? State.Padding : State.Header;
          }
          break;
        }
        case State.Meta: {
          const n = Math.min(this.remaining, len - off);
          this.meta.push(Buffer.from(chunk.subarray(off, off + n)));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.finishMeta();
            this.state = this.pad ? State.Padding : State.Header;
          }
          break;
        }
        case State.Padding: {
          const n = Math.min(this.pad, len - off);
          off += n;
          this.pad -= n;
          if (this.pad === 0) this.state = State.Header;
          break;
        }
      }
    }
  }

  /** Call at end of input: a truncated archive is an error. */
  end(): void {
    if (this.state === State.Body || this.state === State.Meta || this.state === State.Padding || this.hdrFill !== 0) {
      throw new ContentError('layer tar is truncated', { hint: 'the download was cut short or the blob is corrupt; fetch it again' });
    }
    // A missing end-of-archive marker is tolerated (many writers stop after the last entry).
  }

  private header(buf: Buffer, off: number): void {
    if (isZeroBlock(buf, off)) {
      if (++this.zeroBlocks >= 2) this.state = State.Done;
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(buf, off)) {
      const after = this.lastName === null ? '' : `, the last ${JSON.stringify(showBytes(this.lastName))}`;
      throw new ContentError(`invalid tar header checksum (after ${this.entries} entries${after})`, {
        hint: 'the layer is not a tar, is corrupt, or uses a compression img does not know',
      });
    }
    const flag = buf[off + 156];
    let name = cstr(buf, off, 100);
    const ustar = buf.toString('latin1', off + 257, off + 263) === 'ustar\0';
    if (ustar && buf[off + 345] !== 0) name = cstr(buf, off + 345, 155) + '/' + name;
    let size = num(buf, off + 124, 12);
    const kind = typeOf(flag, name);
    if (kind === 'meta') {
      if (size > MAX_META) throw new ContentError(`tar metadata header of ${size} bytes is too large`, { hint: 'the layer is corrupt or hostile' });
      // Many headers may precede one entry (their PAX records add up), and global ones last.
      const global = flag === 0x67;
      const total = (global ? this.globalBytes : this.metaBytes) + size;
      if (total > MAX_META) {
        const where = this.lastName === null ? 'at the start of the tar' : `after entry ${JSON.stringify(showBytes(this.lastName))}`;
        throw new ContentError(`tar ${global ? 'global PAX headers' : 'metadata headers'} ${where} add up to more than ${MAX_META} bytes`, {
          hint: 'the layer is corrupt or hostile (docker and containerd refuse such metadata too)',
        });
      }
      if (global) this.globalBytes = total;
      else this.metaBytes = total;
      this.metaKind = flag;
      this.meta = [];
      this.remaining = size;
      this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
      this.state = size ? State.Meta : State.Header;
      if (!size) this.finishMeta();
      return;
    }
    if (kind === 'unsupported') {
      const c = String.fromCharCode(flag);
      throw new UnsupportedError(`tar entry ${JSON.stringify(showBytes(name))} has unsupported type '${c}'${c === 'S' ? ' (GNU sparse)' : ''}`, {
        hint: 'rebuild the layer without sparse/multi-volume entries',
      });
    }
    let linkname = cstr(buf, off + 157, 100);
    let uid = num(buf, off + 108, 8);
    let gid = num(buf, off + 116, 8);
    let mtime = num(buf, off + 136, 12);
    let xattrs: Map<string, Buffer> | null = null;
    if (this.longName !== null) name = this.longName;
    if (this.longLink !== null) linkname = this.longLink;
    this.longName = this.longLink = null;
    const pax = this.globalPax && this.pax ? new Map([...this.globalPax, ...this.pax]) : (this.pax ?? this.globalPax);
    this.pax = null;
    if (pax) {
      for (const [k, v] of pax) {
        switch (k) {
          case 'path':
            name = v.toString('latin1');
            break;
          case 'linkpath':
            linkname = v.toString('latin1');
            break;
          case 'size':
            size = Number(v.toString('latin1'));
            break;
          case 'uid':
            uid = Number(v.toString('latin1'));
            break;
          case 'gid':
            gid = Number(v.toString('latin1'));
            break;
          case 'mtime':
            mtime = Number(v.toString('latin1'));
            break;
          default:
            if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice(13), v);
            else if (k.startsWith('GNU.sparse.'))
              throw new UnsupportedError(`tar entry ${JSON.stringify(showBytes(name))} is a GNU sparse file`, { hint: 'rebuild the layer without --sparse' });
        }
      }
      if (!Number.isSafeInteger(size) || size < 0 || !Number.isFinite(mtime) || !Number.isSafeInteger(uid) || !Number.isSafeInteger(gid))
        throw new ContentError(`tar entry ${JSON.stringify(showBytes(name))} has an invalid PAX size/uid/gid/mtime`, { hint: 'the layer is corrupt' });
    }
    const type = kind;
    // Like Go's archive/tar (which wrote most layers): only regular files have a body;
    // a size on a header-only type (link, symlink, dir, device, fifo) is ignored.
    const h: TarHeader = {
      name,
      type,
      mode: num(buf, off + 100, 8) & 0o7777,
      uid,
      gid,
      size: type === 'file' ? size : 0,
      mtime,
      linkname,
      devmajor: num(buf, off + 329, 8),
      devminor: num(buf, off + 337, 8),
      xattrs,
    };
    this.entries++;
    this.metaBytes = 0;
    this.lastName = name;
    this.sink.entry(h);
    this.remaining = h.size;
    this.pad = (BLOCK - (h.size % BLOCK)) % BLOCK;
    if (this.remaining > 0) {
      this.state = State.Body;
    } else {
      this.sink.endEntry();
      this.state = this.pad ? State.Padding : State.Header;
    }
  }

  private finishMeta(): void {
    const body = this.meta.length === 1 ? this.meta[0] : Buffer.concat(this.meta);
    this.meta = [];
    switch (this.metaKind) {
      case 0x78:
        parsePax(body, (this.pax ??= new Map()));
        break;
      case 0x67:
        parsePax(body, (this.globalPax ??= new Map()));
        break;
      case 0x4c:
        this.longName = cstr(body, 0, body.length);
        break;
      case 0x4b:
        this.longLink = cstr(body, 0, body.length);
        break;
    }
  }
}

// ---------------------------------------------------------------- writer

export interface WriteHeader {
  name: string; // a byte string, relative, no leading '/'; dirs get a trailing '/' here
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // integer seconds
  linkname?: string; // a byte string
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>; // sorted by name for determinism
}

const TYPEFLAG: Record<EntryType, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};

const MAX_OCTAL8 = 0o7777777; // 7 digits + NUL
const MAX_OCTAL12 = 0o77777777777; // 11 digits + NUL

function writeOctal(buf: Buffer, off: number, len: number, v: number): void {
  const s = v.toString(8).padStart(len - 1, '0');
  buf.write(s, off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const kv = Buffer.byteLength(key) + value.length + 3; // ' ' '=' '\n'
  let len = kv + String(kv).length;
  if (String(len).length !== String(kv).length) len = kv + String(len).length;
  const head = Buffer.from(`${len} ${key}=`);
  return Buffer.concat([head, value, Buffer.from('\n')]);
}

/** Split a path into ustar prefix (<=155) and name (<=100), or null when impossible. */
function splitUstar(p: string): [string, string] | null {
  if (p.length <= 100) return ['', p];
  for (let i = p.length - 101; i < p.length; i++) {
    if (i < 0) continue;
    if (p.charCodeAt(i) === 0x2f && i <= 155 && p.length - i - 1 <= 100 && p.length - i - 1 > 0) return [p.slice(0, i), p.slice(i + 1)];
  }
  return null;
}

function ustarBlock(h: WriteHeader, name: string, prefix: string, linkname: string, size: number, uid: number, gid: number, into?: Buffer): Buffer {
  const b = into ? into.fill(0, 0, BLOCK).subarray(0, BLOCK) : Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'latin1');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, uid);
  writeOctal(b, 116, 8, gid);
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, Math.max(0, Math.min(h.mtime, MAX_OCTAL12)));
  b[156] = TYPEFLAG[h.type];
  if (linkname) b.write(linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(b, 329, 8, h.devmajor ?? 0);
  writeOctal(b, 337, 8, h.devminor ?? 0);
  if (prefix) b.write(prefix, 345, 155, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/**
 * Encode one entry's header blocks (a PAX 'x' header first when needed). With `scratch` (at
 * least 512 bytes), a header without PAX records is written there and the view returned,
 * valid until the scratch is used again: a writer that copies it at once (writeLayer) then
 * allocates nothing per entry.
 */
export function encodeHeader(h: WriteHeader, scratch?: Buffer): Buffer {
  const fullName = h.type === 'dir' && !h.name.endsWith('/') ? h.name + '/' : h.name;
  const records: Buffer[] = [];
  let name = fullName;
  let prefix = '';
  const split = isAscii(fullName) ? splitUstar(fullName) : null;
  if (split) [prefix, name] = split;
  else {
    records.push(paxRecord('path', Buffer.from(fullName, 'latin1')));
    name = fullName.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
  }
  let linkname = h.linkname ?? '';
  if (linkname && (linkname.length > 100 || !isAscii(linkname))) {
    records.push(paxRecord('linkpath', Buffer.from(linkname, 'latin1')));
    linkname = linkname.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
  }
  let size = h.size;
  if (size > MAX_OCTAL12) {
    records.push(paxRecord('size', Buffer.from(String(size))));
    size = 0;
  }
  let uid = h.uid;
  let gid = h.gid;
  if (uid > MAX_OCTAL8) {
    records.push(paxRecord('uid', Buffer.from(String(uid))));
    uid = 0;
  }
  if (gid > MAX_OCTAL8) {
    records.push(paxRecord('gid', Buffer.from(String(gid))));
    gid = 0;
  }
  if (h.xattrs) for (const [k, v] of h.xattrs) records.push(paxRecord('SCHILY.xattr.' + k, v));
  if (records.length === 0) return ustarBlock(h, name, prefix, linkname, size, uid, gid, scratch);
  const main = ustarBlock(h, name, prefix, linkname, size, uid, gid);
  records.sort((a, b) => Buffer.compare(a.subarray(a.indexOf(0x20)), b.subarray(b.indexOf(0x20))));
  const body = Buffer.concat(records);
  const paxName = ('PaxHeaders/' + name).slice(0, 100);
  const ph = ustarBlock(
    { name: paxName, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: h.mtime },
    paxName,
    '',
    '',
    body.length,
    0,
    0,
  );
  ph[156] = 0x78; // 'x'
  // recompute checksum after changing the type flag
  ph.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += ph[i];
  writeOctal(ph, 148, 7, sum);
  ph[155] = 0x20;
  const padded = Buffer.alloc(Math.ceil(body.length / BLOCK) * BLOCK);
  body.copy(padded);
  return Buffer.concat([ph, padded, main]);
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
