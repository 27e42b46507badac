// Content checksums of local sources (the build context), with a stat-keyed
// cache so an unchanged context of tens of thousands of files is not re-read.
//
// The checksum covers exactly the selected files (after .dockerignore and the
// COPY include patterns): for each, its path, type, permission bits and
// content hash (symlinks: the target), in walk order — names sorted within a
// directory, a directory before what it holds.
//
// MEMORY: the walk streams. It holds the listings of the directories it is inside
// and of the next few siblings being listed ahead (PREFETCH per level), a window
// of entries whose content is being hashed (they feed the digest in order), and
// the stat-cache records of the directories on its way — never a list of the
// whole tree. The selected entries go to a scan list (in memory up to IN_MEMORY
// entries, beyond that an unlinked temp file under <state>/tmp) that COPY keys
// and the transfer read back in order (ContextScan.entries()).
//
// SPEED: a directory is listed, stat'ed (statx: only the key's fields) and its
// cache record read in one addon call on a pool thread (addon/statdir.cc), so an
// unchanged context costs one round trip per directory, not one per file, and
// slow stats (NFS homes) never block the JS thread.
//
// STAT CACHE: one record per directory of a context,
//   <state>/cache/checksums/<sha256 of the context's real path>/<sha256 of the dir's relative path>.json
//   { "version": 2, "dir": "rel/dir", "files": { "name": [size, mtimeNs, ino, mode, sha256 hex] } }
// An entry is trusted while size, mtime (ns), inode and mode are unchanged; a
// file touched without a content change is re-hashed and yields the same hash.
// A record is rewritten (temp + rename, so readers see the old or the new one;
// concurrent processes: the last one wins, a lost update only costs a re-hash)
// when an entry was hashed or its file is gone. No fsync: a record lost to a
// crash is a cache miss. The version 1 cache (one <hex>.json per context) is
// removed when its context is scanned. `img prune` removes the whole directory.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../host/index';
import type { DirListing } from '../host/native';
import { showBytes, toBytes } from '../util/bytenames';
import { hostErrorClass, ImgError, isErrno, NotFoundError, UnsupportedError, UsageError } from '../util/errors';
import { compileGlob } from '../util/glob';
import { Limiter } from '../util/limiter';
import { debug } from '../util/log';

export interface ContextFile {
  rel: string; // '/'-separated, no leading slash
  type: 'file' | 'dir' | 'symlink';
  mode: number; // full st_mode
  size: number;
  mtimeMs: number;
  hash?: string; // file: sha256 hex of content; symlink: target
  linkTarget?: string;
  ino?: string; // file: its inode, so names of one inode become hard links again (fsutil's send does)
  socket?: true; // a socket, sent as an empty regular file (BuildKit's testCopySocket)
}

// Decides what of the context is selected. `excluded` is the .dockerignore
// verdict for a path; `included` the COPY include patterns (undefined = all).
export interface Selector {
  excluded(rel: string, isDir: boolean): boolean;
  // Whether an excluded dir may still hold re-included files (dockerignore `!pattern`).
  mayReinclude(relDir: string): boolean;
  included?(rel: string, isDir: boolean): 'yes' | 'no' | 'descend';
}

export const SELECT_ALL: Selector = { excluded: () => false, mayReinclude: () => false };

/** What the cache compares a file by (the decimal strings of a bigint stat, as records since version 2 hold them). */
export interface StatKey {
  size: number;
  mtime: string; // ns since epoch, as a decimal string (bigint stat)
  ino: string;
  mode: number;
}

/** One line of the digest: the COPY keys (ops/file.ts) hash subsets of a scan the same way. */
export function entryLine(f: ContextFile): string {
  return `${f.rel}\0${f.type}\0${(f.mode & 0o7777).toString(8)}\0${f.hash ?? ''}\n`;
}

// ---- the stat cache

type CachedEntry = [size: number, mtime: string, ino: string, mode: number, hash: string];

interface DirRecord {
  version: 2;
  dir: string;
  files: Record<string, CachedEntry>;
}

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const EMPTY_SHA256 = sha256hex('');

// The stat-keyed cache of one context directory: a record per directory, read
// when the walk enters that directory and written back once its files are hashed.
export class ChecksumCache {
  hits = 0;
  misses = 0;

  private constructor(
    private readonly dir: string,
    readonly root: string,
  ) {}

  static async open(stateDir: string, contextDir: string): Promise<ChecksumCache> {
    const root = await fsp.realpath(contextDir);
    const name = sha256hex(root);
    const base = path.join(stateDir, 'cache', 'checksums');
    // The version 1 cache of this context (one JSON document of every file): rebuilt as records.
    await fsp.rm(path.join(base, `${name}.json`), { force: true });
    return new ChecksumCache(path.join(base, name), root);
  }

  /** Where the record of `relDir` is (read with the directory's listing: listDir). */
  recordFile(relDir: string): string {
    return path.join(this.dir, `${sha256hex(relDir)}.json`);
  }

  /** The record of `relDir` from its bytes (null: none), or an empty one (torn, from another version or directory). */
  record(relDir: string, bytes: Buffer | null): DirCache {
    let files: Record<string, CachedEntry> = {};
    try {
      const rec = bytes && (JSON.parse(bytes.toString('utf8')) as DirRecord);
      if (rec?.version === 2 && rec.dir === relDir && rec.files && typeof rec.files === 'object') files = rec.files;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
    return new DirCache(this, this.recordFile(relDir), relDir, files);
  }

  /** @internal */
  async write(file: string, rec: DirRecord): Promise<void> {
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(rec));
      await fsp.rename(tmp, file);
    } catch (err) {
      debug(`checksum cache: cannot write ${file}: ${(err as Error).message}`); // the next scan hashes again
    }
  }
}

// One directory's record while the walk is in it.
class DirCache {
  private dirty = false;
  private pending = 0; // hashes still to be recorded
  private closed = false;
  private flushed = false;
  private resolveDone!: () => void;
  /** Resolves when the record is on disk (or nothing needed writing). */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly cache: ChecksumCache,
    private readonly file: string,
    private readonly relDir: string,
    private readonly files: Record<string, CachedEntry>,
  ) {}

  lookup(name: string, st: StatKey): string | null {
    const e = this.files[name];
    if (e && e[0] === st.size && e[1] === st.mtime && e[2] === st.ino && e[3] === st.mode) {
      this.cache.hits++;
      return e[4];
    }
    this.cache.misses++;
    this.pending++;
    return null;
  }

  record(name: string, st: StatKey, hash: string): void {
    this.files[name] = [st.size, st.mtime, st.ino, st.mode, hash];
    this.dirty = true;
    this.pending--;
    this.flushIfDone();
  }

  /** A lookup that will not be recorded (the hash failed). */
  abandon(): void {
    this.pending--;
    this.flushIfDone();
  }

  /** The walk left the directory: drop entries of names gone or no longer files; write once hashed. */
  close(present: (name: string) => boolean): void {
    for (const name of Object.keys(this.files)) {
      if (!present(name)) {
        delete this.files[name];
        this.dirty = true;
      }
    }
    this.closed = true;
    this.flushIfDone();
  }

  private flushIfDone(): void {
    if (!this.closed || this.pending > 0 || this.flushed) return;
    this.flushed = true;
    if (!this.dirty) return this.resolveDone();
    void this.cache.write(this.file, { version: 2, dir: this.relDir, files: this.files }).then(this.resolveDone);
  }
}

// ---- the scan list: the selected entries, in order, in memory or an unlinked temp file

const LIST_CHUNK = 64 * 1024;
const IN_MEMORY = 16_384; // entries a list holds as objects before it moves to a file (~4 MiB)

// The entries of a context of up to IN_MEMORY entries stay in memory: a cached build of
// it writes and parses nothing. A larger list moves to a file of JSON lines
// ([rel, type, mode, size, mtimeMs, hash, linkTarget]); a newline never occurs inside one
// (JSON escapes it, and UTF-8 never has the byte 0x0a inside a character). The file is
// unlinked once open: nothing to clean up, even after SIGKILL; the descriptor closes with
// the scan (or the process).
class ScanList {
  private memory: ContextFile[] | null = [];
  private fd = -1;
  private pending: string[] = [];
  private pendingBytes = 0;
  private size = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly tmpDir: string,
    private readonly inMemory: number,
  ) {}

  add(f: ContextFile): Promise<void> | undefined {
    if (this.memory) {
      this.memory.push(f);
      return this.memory.length > this.inMemory ? this.toFile() : undefined;
    }
    const line = toLine(f);
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes < LIST_CHUNK) return undefined;
    return this.flush();
  }

  private async toFile(): Promise<void> {
    const entries = this.memory!;
    this.memory = null;
    await fsp.mkdir(this.tmpDir, { recursive: true });
    const file = path.join(this.tmpDir, `scan-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.fd = await new Promise<number>((resolve, reject) => fs.open(file, 'wx+', 0o600, (err, fd) => (err ? reject(err) : resolve(fd))));
    closeList.register(this, this.fd, this);
    await fsp.unlink(file);
    for (const f of entries) {
      const line = toLine(f);
      this.pending.push(line);
      this.pendingBytes += line.length;
      if (this.pendingBytes >= LIST_CHUNK) await this.flush();
    }
  }

  flush(): Promise<void> {
    if (this.pending.length === 0) return this.writing;
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    const at = this.size;
    this.size += buf.length;
    // One write at a time, each at its own offset: the order of lines is the order of add().
    this.writing = this.writing.then(() => writeAll(this.fd, buf, at));
    return this.writing;
  }

  // A generator method: a reader keeps the list (and so its descriptor) alive.
  async *read(): AsyncGenerator<ContextFile> {
    if (this.memory) yield* this.memory;
    else yield* readEntries(this.fd, 0, this.size);
  }

  /** Writes the list after `header` into `file` (temp + rename: readers see the old or the new one). */
  async saveAs(file: string, header: string): Promise<void> {
    await this.flush();
    await fsp.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const out = await fsp.open(tmp, 'wx', 0o644);
    try {
      await out.write(`${header}\n`);
      if (this.memory) {
        for (let i = 0; i < this.memory.length; i += 1024) await out.write(this.memory.slice(i, i + 1024).map(toLine).join(''));
      } else {
        const buf = Buffer.allocUnsafe(LIST_CHUNK);
        for (let pos = 0; pos < this.size; ) {
          const n = await readAt(this.fd, buf, Math.min(LIST_CHUNK, this.size - pos), pos);
          if (n === 0) break;
          await out.write(buf, 0, n);
          pos += n;
        }
      }
      await out.close();
      await fsp.rename(tmp, file);
    } catch (err) {
      await out.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async close(): Promise<void> {
    this.memory = [];
    if (this.fd < 0) return;
    closeList.unregister(this);
    await this.writing.catch(() => {}); // no write may land on a descriptor number reused meanwhile
    fs.close(this.fd, () => {});
    this.fd = -1;
  }
}

function toLine(f: ContextFile): string {
  return JSON.stringify([f.rel, f.type, f.mode, f.size, f.mtimeMs, f.hash ?? null, f.linkTarget ?? null, f.ino ?? null, f.socket ? 1 : 0]) + '\n';
}

// A scan nobody closed (a library caller's) gives its descriptor back when it is collected.
const closeList = new FinalizationRegistry<number>((fd) => fs.close(fd, () => {}));

function readAt(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

// The entries in the bytes [from, end) of a list file.
async function* readEntries(fd: number, from: number, end: number): AsyncGenerator<ContextFile> {
  const buf = Buffer.allocUnsafe(LIST_CHUNK);
  let pos = from;
  let rest = Buffer.alloc(0); // a line begun in the previous chunk
  while (pos < end) {
    const n = await readAt(fd, buf, Math.min(LIST_CHUNK, end - pos), pos);
    if (n === 0) break;
    pos += n;
    const data = rest.length ? Buffer.concat([rest, buf.subarray(0, n)]) : buf.subarray(0, n);
    // Cut at the last newline: a character is never split (0x0a is never part of one).
    const last = data.lastIndexOf(0x0a);
    rest = Buffer.from(data.subarray(last + 1));
    if (last < 0) continue;
    for (const line of data.toString('utf8', 0, last).split('\n')) if (line) yield parseLine(line);
  }
  if (rest.length) yield parseLine(rest.toString('utf8'));
}

function parseLine(line: string): ContextFile {
  const [rel, type, mode, size, mtimeMs, hash, linkTarget, ino, socket] = JSON.parse(line) as [string, ContextFile['type'], number, number, number, string | null, string | null, string | null | undefined, number | undefined];
  const f: ContextFile = { rel, type, mode, size, mtimeMs };
  if (hash !== null) f.hash = hash;
  if (linkTarget !== null) f.linkTarget = linkTarget;
  if (ino != null) f.ino = ino;
  if (socket) f.socket = true;
  return f;
}

async function writeAll(fd: number, buf: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await new Promise<number>((resolve, reject) => fs.write(fd, buf, off, buf.length - off, at + off, (err, n) => (err ? reject(err) : resolve(n))));
    off += n;
  }
}

/** The result of scanning a local source: its digest, and its selected entries to read back in order. */
export class ContextScan {
  private closed = false;

  /** @internal */
  constructor(
    private readonly list: ScanList,
    readonly digest: string,
    readonly count: number, // selected entries
    readonly bytes: number, // bytes of the selected files
  ) {}

  /** The selected entries in walk order (each call reads the list from its start). */
  entries(): AsyncGenerator<ContextFile> {
    if (this.closed) throw new Error('context scan used after close()');
    return this.list.read();
  }

  /**
   * The sha256 hex of the entries the include patterns (COPY sources, includeMatcher)
   * select, hashed as the scan's digest is: patterns selecting everything ("." or "/")
   * give the digest itself without reading the list again.
   */
  async digestOf(patterns: string[]): Promise<string> {
    if (patterns.some(selectsAll)) return this.digest.slice('sha256:'.length);
    const match = includeMatcher(patterns);
    const h = createHash('sha256');
    for await (const f of this.entries()) if (match(f.rel, f.type === 'dir') === 'yes') h.update(entryLine(f));
    return h.digest('hex');
  }

  /** The whole selection as an array: for small selections and tests. */
  async toArray(): Promise<ContextFile[]> {
    const out: ContextFile[] = [];
    for await (const f of this.entries()) out.push(f);
    return out;
  }

  /** Stores the selection in `file` after a one-line JSON `header`, for openSavedScan. */
  saveAs(file: string, header: unknown): Promise<void> {
    if (this.closed) throw new Error('context scan used after close()');
    return this.list.saveAs(file, JSON.stringify(header));
  }

  /** Gives the list's descriptor back; entries() throws afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.list.close();
  }
}

/** A selection stored by ContextScan.saveAs: its header, and its entries read back in order. */
export interface SavedScan {
  header: unknown;
  entries(): AsyncGenerator<ContextFile>;
  close(): Promise<void>;
}

// null when the file is missing or not a saved scan (a record of an older img: one JSON
// document whose first line would be the whole file).
export async function openSavedScan(file: string): Promise<SavedScan | null> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const first = Buffer.allocUnsafe(Math.min(LIST_CHUNK, size));
    const { bytesRead } = await fh.read(first, 0, first.length, 0);
    const nl = first.subarray(0, bytesRead).indexOf(0x0a);
    const header = nl < 0 ? null : (JSON.parse(first.toString('utf8', 0, nl)) as unknown);
    if (header === null) {
      await fh.close();
      return null;
    }
    const handle = fh; // held by every reader: a collected FileHandle would close its descriptor
    return {
      header,
      async *entries() {
        yield* readEntries(handle.fd, nl + 1, size);
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await fh.close();
    if (err instanceof SyntaxError) return null;
    throw err;
  }
}

// ---- walk order

/** The order of a walk (names sorted within a directory, a directory before its entries) on '/'-separated paths. */
export function compareWalkOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return -1; // a's name ended first: a prefix sorts first
    if (cb === 0x2f) return 1;
    return ca - cb;
  }
  return a.length - b.length;
}

/** Two selections in walk order, paired by path: [before, now], either missing. */
export async function* pairByPath(before: AsyncIterable<ContextFile>, now: AsyncIterable<ContextFile>): AsyncGenerator<[ContextFile | undefined, ContextFile | undefined]> {
  const bi = before[Symbol.asyncIterator]();
  const ni = now[Symbol.asyncIterator]();
  let b = await bi.next();
  let n = await ni.next();
  while (!b.done || !n.done) {
    const c = b.done ? 1 : n.done ? -1 : compareWalkOrder(b.value.rel, n.value.rel);
    if (c < 0) {
      yield [b.value as ContextFile, undefined];
      b = await bi.next();
    } else if (c > 0) {
      yield [undefined, n.value as ContextFile];
      n = await ni.next();
    } else {
      yield [b.value as ContextFile, n.value as ContextFile];
      b = await bi.next();
      n = await ni.next();
    }
  }
}

// ---- listing a directory

const { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFSOCK } = fs.constants;

// One directory as the walk reads it (the addon's statDir, addon/statdir.cc).
type StatDir = (dir: string, side?: string) => Promise<DirListing>;

interface Fetched {
  absDir: string;
  dir: DirListing;
  dirCache: DirCache | null;
}

// The addon lists and stats a whole directory in one call on a pool thread; without
// it (or an addon built before statDir) the names are stat'ed in batches of promises.
let statDirFn: StatDir | undefined;
function listDir(dir: string, side?: string): Promise<DirListing> {
  if (!statDirFn) {
    let native: StatDir | undefined;
    try {
      native = loadAddon().statDir;
    } catch {
      native = undefined;
    }
    statDirFn = native ?? listDirByPromises;
  }
  return statDirFn(dir, side);
}

const STAT_BATCH = 256;

async function listDirByPromises(dir: string, side?: string): Promise<DirListing> {
  const sideBytes = side === undefined ? undefined : await fsp.readFile(side).catch((err) => (isErrno(err, 'ENOENT') ? null : Promise.reject(err)));
  const bufs = await fsp.readdir(dir, { encoding: 'buffer' });
  const decoded = bufs.map((b) => ({ name: b.toString('utf8'), b }));
  decoded.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const out: DirListing = { names: decoded.map((d) => d.name), stats: new Float64Array(decoded.length * 6), targets: {}, raw: {}, side: sideBytes };
  for (let start = 0; start < decoded.length; start += STAT_BATCH) {
    const batch = decoded.slice(start, start + STAT_BATCH);
    const stats = await Promise.all(batch.map((d) => fsp.lstat(Buffer.concat([Buffer.from(`${dir}/`), d.b]), { bigint: true }).catch((err) => (isErrno(err, 'ENOENT') ? null : Promise.reject(err)))));
    for (let k = 0; k < batch.length; k++) {
      const i = start + k;
      const st = stats[k];
      if (!Buffer.from(batch[k].name).equals(batch[k].b)) out.raw[i] = batch[k].b;
      if (!st) continue;
      out.stats.set([Number(st.mode), Number(st.size), Number(st.mtimeNs / 1_000_000_000n), Number(st.mtimeNs % 1_000_000_000n), Number(st.ino >> 32n), Number(st.ino & 0xffffffffn)], i * 6);
      if (st.isSymbolicLink()) out.targets[i] = await fsp.readlink(path.join(dir, batch[k].name));
    }
  }
  return out;
}

// The cache key and the time of entry i, as a bigint stat gives them: mtime in ns and the
// inode as decimal strings, mtimeMs truncated.
function statKey(stats: Float64Array, i: number): StatKey {
  const o = i * 6;
  const sec = stats[o + 2];
  const ns = stats[o + 3];
  const mtime = sec > 0 ? `${sec}${String(ns).padStart(9, '0')}` : String(BigInt(sec) * 1_000_000_000n + BigInt(ns));
  const hi = stats[o + 4];
  const ino = hi === 0 ? String(stats[o + 5]) : String((BigInt(hi) << 32n) | BigInt(stats[o + 5]));
  return { size: stats[o + 1], mtime, ino, mode: stats[o] };
}

function mtimeMs(stats: Float64Array, i: number): number {
  const sec = stats[i * 6 + 2];
  const ns = stats[i * 6 + 3];
  return sec >= 0 ? sec * 1000 + Math.floor(ns / 1e6) : Number((BigInt(sec) * 1_000_000_000n + BigInt(ns)) / 1_000_000n);
}

// ---- the walk

const HASH_PARALLEL = 16;
const PREFETCH = 4; // directories listed at once (the one walked and those next)
const WINDOW = 256; // entries waiting for their hash before the digest
const SMALL = 256 * 1024;

async function hashFile(abs: string, size: number): Promise<string> {
  const h = createHash('sha256');
  if (size <= SMALL) {
    h.update(await fsp.readFile(abs));
  } else {
    for await (const chunk of fs.createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

export interface ScanOptions {
  /** Where a large scan list goes (unlinked at once); os.tmpdir() without one. */
  tmpDir?: string;
  /** Entries the list keeps in memory before it moves to a file (IN_MEMORY). */
  inMemory?: number;
  onProgress?: (files: number, bytes: number) => void;
}

// Walks `root` in order and returns the digest of the selected entries, with the list of them.
export async function scanContext(root: string, selector: Selector, cache: ChecksumCache | null, opts: ScanOptions = {}): Promise<ContextScan> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    const Cls = isErrno(err, 'ENOENT') ? NotFoundError : (hostErrorClass(err) ?? ImgError);
    throw new Cls(`build context ${root} cannot be read: ${(err as Error).message}`, { hint: 'pass an existing directory as the build context', cause: err });
  }
  if (!st.isDirectory()) throw new UsageError(`build context ${root} is not a directory`, { hint: 'pass a directory, a tar on stdin (-), or a URL' });
  const list = new ScanList(opts.tmpDir ?? os.tmpdir(), opts.inMemory ?? IN_MEMORY);
  const digest = createHash('sha256');
  const limiter = new Limiter(HASH_PARALLEL);
  const records = new Set<Promise<void>>(); // stat-cache records still to be written
  let count = 0;
  let bytes = 0;
  let hashed = 0;
  let failed: unknown = null;

  // Entries in walk order, each fed to the digest and the list once its hash is known:
  // straight away while nothing waits for a hash before it, else through the window.
  // The digest takes the lines in chunks (one native call per 64 KiB, not per entry).
  const window: { f: ContextFile; hashing?: Promise<string> }[] = [];
  let lines = '';
  const feed = (f: ContextFile): Promise<void> | undefined => {
    lines += entryLine(f);
    if (lines.length >= LIST_CHUNK) {
      digest.update(lines);
      lines = '';
    }
    count++;
    return list.add(f);
  };
  const feedOne = async () => {
    const w = window.shift()!;
    if (w.hashing) w.f.hash = await w.hashing;
    await feed(w.f);
  };
  const push = (f: ContextFile, hashing?: Promise<string>): Promise<void> | undefined => {
    if (window.length === 0 && !hashing) return feed(f);
    window.push({ f, hashing });
    return window.length > WINDOW ? drain() : undefined;
  };
  const drain = async () => {
    while (window.length > WINDOW) await feedOne();
  };
  // Awaited by the walk only when something is to wait for (most entries: nothing).
  const emit = (f: ContextFile, hashing?: Promise<string>): Promise<void> | undefined => {
    // Directories only on the way to selected entries are listed before the first of them.
    for (const d of conditional) {
      if (d.emitted) continue;
      d.emitted = true;
      const p = push(d.f);
      if (p) return p.then(() => emit(f, hashing));
    }
    return push(f, hashing);
  };
  const conditional: { f: ContextFile; emitted: boolean }[] = [];

  const hash = (rel: string, key: StatKey, dirCache: DirCache | null, name: string): Promise<string> => {
    const p = (async () => {
      const release = await limiter.acquire();
      try {
        const h = await hashFile(path.join(root, rel), key.size);
        dirCache?.record(name, key, h);
        if (++hashed % 500 === 0) opts.onProgress?.(hashed, bytes);
        return h;
      } catch (err) {
        dirCache?.abandon();
        throw err;
      } finally {
        release();
      }
    })();
    // Awaited in order by feedOne; a failure before that point must not be unhandled.
    p.catch((err) => (failed ??= err));
    return p;
  };

  // A directory's listing and stat-cache record, read in one trip; null when the directory
  // is gone (removed since its parent was listed: nothing under it).
  const fetchDir = async (relDir: string): Promise<Fetched | null> => {
    const absDir = relDir ? path.join(root, relDir) : root;
    let dir: DirListing;
    try {
      dir = await listDir(absDir, cache?.recordFile(relDir));
    } catch (err) {
      if (relDir && isErrno(err, 'ENOENT')) return null;
      const Cls = hostErrorClass(err) ?? ImgError;
      throw new Cls(`cannot read ${absDir} in the build context: ${(err as Error).message}`, {
        hint: 'make it readable, or exclude it in .dockerignore',
        cause: err,
      });
    }
    return { absDir, dir, dirCache: cache?.record(relDir, dir.side ?? null) ?? null };
  };

  const walk = async (relDir: string, fetching: Promise<Fetched | null>): Promise<void> => {
    const fetched = await fetching;
    if (!fetched) return;
    const { absDir, dir, dirCache } = fetched;
    const { names, stats } = dir;
    const files = dirCache ? new Set<string>() : null; // regular files present (what the record keeps)
    const choose = (rel: string, isDir: boolean) => {
      const excluded = selector.excluded(rel, isDir);
      let inc: 'yes' | 'no' | 'descend' = selector.included ? selector.included(rel, isDir) : 'yes';
      if (inc === 'descend' && !isDir) inc = 'no';
      const selected = isDir ? inc !== 'no' && (!excluded || selector.mayReinclude(rel)) : inc === 'yes' && !excluded;
      return { selected, whole: !excluded && inc === 'yes' };
    };
    const relOf = (i: number) => (relDir ? `${relDir}/${names[i]}` : names[i]);
    // The subdirectories to walk, chosen first so that they can be listed a few ahead
    // (latency overlaps; memory stays PREFETCH listings per level).
    const subdirs: number[] = [];
    const wholeDir = new Set<number>(); // selected with all it holds, not only on the way to included files
    for (let i = 0; i < names.length; i++) {
      if ((stats[i * 6] & S_IFMT) !== S_IFDIR) continue;
      const c = choose(relOf(i), true);
      if (!c.selected) continue;
      subdirs.push(i);
      if (c.whole) wholeDir.add(i);
    }
    const ahead = new Map<number, Promise<Fetched | null>>();
    let next = 0; // subdirs[next] is the first not yet walked
    const descend = (i: number): Promise<void> => {
      while (next < subdirs.length && subdirs[next] <= i) next++;
      for (let k = next; k < Math.min(subdirs.length, next + PREFETCH - 1); k++) {
        const j = subdirs[k];
        if (ahead.has(j)) continue;
        const p = fetchDir(relOf(j));
        p.catch(() => {}); // surfaces when walked (or not at all when an earlier failure ends the walk)
        ahead.set(j, p);
      }
      const mine = ahead.get(i) ?? fetchDir(relOf(i));
      ahead.delete(i);
      return walk(relOf(i), mine);
    };
    let sub = 0;
    for (let i = 0; i < names.length; i++) {
      if (failed) throw failed;
      const mode = stats[i * 6];
      if (mode === 0) continue; // gone since readdir
      const type = mode & S_IFMT;
      const isDir = type === S_IFDIR;
      const name = names[i];
      if (files && type === S_IFREG) files.add(name);
      if (isDir ? subdirs[sub] !== i : !choose(relOf(i), false).selected) continue;
      if (isDir) sub++;
      const rel = relOf(i);
      // Paths are text from here on (the scan list, .dockerignore, COPY): such a name cannot be carried.
      if (dir.raw[i]) {
        throw new UnsupportedError(`the build context holds a file name that is not UTF-8: ${showBytes(`${toBytes(absDir)}/${dir.raw[i].toString('latin1')}`)}`, {
          hint: 'rename it, or exclude it in .dockerignore',
        });
      }
      if (isDir) {
        const f = entry(rel, 'dir', stats, i);
        if (wholeDir.has(i)) {
          await emit(f);
          await descend(i);
        } else {
          // A dir that is only on the way to included files is listed once something under it is.
          conditional.push({ f, emitted: false });
          await descend(i);
          conditional.pop();
        }
        continue;
      }
      if (type === S_IFLNK) {
        const f = entry(rel, 'symlink', stats, i);
        f.linkTarget = dir.targets[i];
        f.hash = f.linkTarget;
        await emit(f);
      } else if (type === S_IFREG) {
        const f = entry(rel, 'file', stats, i);
        bytes += f.size;
        const key = statKey(stats, i);
        f.ino = key.ino;
        const cached = dirCache?.lookup(name, key) ?? null;
        if (cached) {
          f.hash = cached;
          const waiting = emit(f);
          if (waiting) await waiting; // (the usual cached entry is fed at once: no turn of the event loop)
        } else {
          await emit(f, hash(rel, key, dirCache, name));
        }
      } else if (type === S_IFSOCK) {
        // BuildKit's context transfer makes a socket an empty regular file of its permissions.
        const f = entry(rel, 'file', stats, i);
        f.mode = S_IFREG | (f.mode & 0o7777);
        f.size = 0;
        f.hash = EMPTY_SHA256;
        f.socket = true;
        await emit(f);
      }
      // fifos and devices in a context are skipped.
    }
    if (dirCache) {
      dirCache.close((name) => files!.has(name));
      const done = dirCache.done;
      records.add(done);
      void done.then(() => records.delete(done));
    }
  };

  try {
    await walk('', fetchDir(''));
    while (window.length) await feedOne();
    digest.update(lines);
    await list.flush();
  } catch (err) {
    // The hashes in flight finish (and are recorded: they were paid for) before the error surfaces.
    await Promise.allSettled(window.map((w) => w.hashing));
    await list.close();
    throw err;
  } finally {
    await Promise.all(records);
  }
  opts.onProgress?.(count, bytes);
  return new ContextScan(list, `sha256:${digest.digest('hex')}`, count, bytes);
}

function entry(rel: string, type: ContextFile['type'], stats: Float64Array, i: number): ContextFile {
  return { rel, type, mode: stats[i * 6], size: stats[i * 6 + 1], mtimeMs: mtimeMs(stats, i) };
}

// ---- include patterns (COPY sources) ----

// COPY sources as include patterns: a path is included when the pattern
// matches it or one of its parents; a dir is descended into when it may
// contain a match (its components match a prefix of the pattern). Each
// component is a filepath.Match glob (util/glob.ts).
const cleanPattern = (p: string) => path.posix.normalize('/' + p).slice(1).replace(/\/$/, '');

/** Whether an include pattern selects the whole source ("." or "/"). */
function selectsAll(p: string): boolean {
  const clean = cleanPattern(p);
  return clean === '' || clean === '.';
}

export function includeMatcher(patterns: string[]): (rel: string, isDir: boolean) => 'yes' | 'no' | 'descend' {
  if (patterns.some(selectsAll)) return () => 'yes';
  const compiled = patterns.map((p) => cleanPattern(p).split('/').map((part) => compileGlob(part)));
  return (rel, isDir) => {
    const parts = rel.split('/');
    let descend = false;
    for (const pat of compiled) {
      const n = Math.min(pat.length, parts.length);
      let ok = true;
      for (let i = 0; i < n; i++) {
        if (!pat[i].matches(parts[i])) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (parts.length >= pat.length) return 'yes'; // the pattern matches rel or a parent
      if (isDir) descend = true;
    }
    return descend ? 'descend' : 'no';
  };
}
