// Content checksums of local sources (the build context), with a stat-keyed
// cache so an unchanged context of tens of thousands of files is not re-read.
//
// The cache lives in <state>/cache/checksums/<sha256 of the context's real path>.json:
//   { "version": 1, "root": "/abs/ctx", "files": { "rel/path": {size, mtime, ino, mode, hash} } }
// An entry is trusted while size, mtime (ns), inode and mode are unchanged; a
// file touched without a content change is re-hashed and yields the same hash.
// It is written atomically (temp + rename); a lost update only costs a re-hash.
//
// The checksum covers exactly the selected files (after .dockerignore and the
// COPY include patterns): for each, its path, type, permission bits and
// content hash (symlinks: the target), in sorted order.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ImgError, isErrno } from '../util/errors';
import { compileGlob, type Glob } from '../util/glob';

export interface ChecksumEntry {
  size: number;
  mtime: string; // ns since epoch, as a decimal string (bigint stat)
  ino: string;
  mode: number;
  hash: string;
}

export interface ContextFile {
  rel: string; // '/'-separated, no leading slash
  type: 'file' | 'dir' | 'symlink';
  mode: number; // full st_mode
  size: number;
  mtimeMs: number;
  hash?: string; // file: sha256 hex of content; symlink: target
  linkTarget?: string;
}

// Decides what of the context is selected. `excluded` is the .dockerignore
// verdict for a path; `included` the COPY include patterns (undefined = all).
export interface Selector {
  excluded(rel: string, isDir: boolean): boolean;
  // Whether an excluded dir may still hold re-included files (dockerignore `!pattern`).
  mayReinclude(relDir: string): boolean;
  included?(rel: string, isDir: boolean): 'yes' | 'no' | 'descend';
}

/** What the cache compares a file by: kept per file still to hash instead of its BigIntStats (about 1 KiB each: 200,000 files held 400 MiB). */
export type StatKey = Omit<ChecksumEntry, 'hash'>;

function statKey(st: fs.BigIntStats): StatKey {
  return { size: Number(st.size), mtime: String(st.mtimeNs), ino: String(st.ino), mode: Number(st.mode) };
}

export const SELECT_ALL: Selector = { excluded: () => false, mayReinclude: () => false };

export class ChecksumCache {
  private dirty = false;
  hits = 0;
  misses = 0;

  private constructor(
    private readonly file: string,
    readonly root: string,
    private readonly files: Record<string, ChecksumEntry>,
  ) {}

  static async open(stateDir: string, contextDir: string): Promise<ChecksumCache> {
    const root = await fsp.realpath(contextDir);
    const name = createHash('sha256').update(root).digest('hex');
    const file = path.join(stateDir, 'cache', 'checksums', `${name}.json`);
    let files: Record<string, ChecksumEntry> = {};
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8'));
      if (data?.version === 1 && data.root === root && data.files && typeof data.files === 'object') files = data.files;
    } catch (err) {
      // Missing or torn (cannot be torn: atomic rename; but be lenient) → start empty.
      if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
    }
    return new ChecksumCache(file, root, files);
  }

  lookup(rel: string, st: StatKey): string | null {
    const e = this.files[rel];
    if (e && e.size === st.size && e.mtime === st.mtime && e.ino === st.ino && e.mode === st.mode) {
      this.hits++;
      return e.hash;
    }
    this.misses++;
    return null;
  }

  record(rel: string, st: StatKey, hash: string): void {
    this.files[rel] = { ...st, hash };
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify({ version: 1, root: this.root, files: this.files }));
    await fsp.rename(tmp, this.file);
    this.dirty = false;
  }
}

const HASH_PARALLEL = 16;
const SMALL = 256 * 1024;

async function hashFile(abs: string): Promise<string> {
  const h = createHash('sha256');
  const st = await fsp.stat(abs);
  if (st.size <= SMALL) {
    h.update(await fsp.readFile(abs));
  } else {
    for await (const chunk of fs.createReadStream(abs, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

// Walks `root`, returns the selected entries (sorted) with content hashes.
export async function scanContext(
  root: string,
  selector: Selector,
  cache: ChecksumCache | null,
  onProgress?: (files: number, bytes: number) => void,
): Promise<{ files: ContextFile[]; digest: string; bytes: number }> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    throw new ImgError(`build context ${root} cannot be read: ${(err as Error).message}`, { hint: 'pass an existing directory as the build context', cause: err });
  }
  if (!st.isDirectory()) throw new ImgError(`build context ${root} is not a directory`, { hint: 'pass a directory, a tar on stdin (-), or a URL' });
  const out: ContextFile[] = [];
  const toHash: { f: ContextFile; st: StatKey }[] = [];

  const walk = async (relDir: string, underExcluded: boolean): Promise<void> => {
    const absDir = relDir ? path.join(root, relDir) : root;
    let names: string[];
    try {
      names = await fsp.readdir(absDir);
    } catch (err) {
      throw new ImgError(`cannot read ${absDir} in the build context: ${(err as Error).message}`, {
        hint: 'make it readable, or exclude it in .dockerignore',
        cause: err,
      });
    }
    names.sort();
    // Stat a directory's entries together: the walk is bound by syscall latency.
    const stats = await Promise.all(names.map((name) => fsp.lstat(path.join(absDir, name), { bigint: true })));
    for (let ni = 0; ni < names.length; ni++) {
      const name = names[ni];
      const rel = relDir ? `${relDir}/${name}` : name;
      const abs = path.join(absDir, name);
      const lst = stats[ni];
      const isDir = lst.isDirectory();
      const excluded = selector.excluded(rel, isDir);
      let inc: 'yes' | 'no' | 'descend' = selector.included ? selector.included(rel, isDir) : 'yes';
      if (inc === 'descend' && !isDir) inc = 'no';
      if (isDir) {
        if (excluded && !selector.mayReinclude(rel)) continue;
        if (inc === 'no') continue;
        if (!excluded && inc === 'yes') out.push(entry(rel, 'dir', lst));
        // A dir that is only on the way to included files is listed once something under it is.
        const before = out.length;
        await walk(rel, excluded);
        if ((excluded || inc === 'descend') && out.length > before) out.splice(before, 0, entry(rel, 'dir', lst));
        continue;
      }
      if (excluded || inc !== 'yes') continue;
      void underExcluded;
      if (lst.isSymbolicLink()) {
        const f = entry(rel, 'symlink', lst);
        f.linkTarget = await fsp.readlink(abs);
        f.hash = f.linkTarget;
        out.push(f);
      } else if (lst.isFile()) {
        const f = entry(rel, 'file', lst);
        out.push(f);
        const key = statKey(lst);
        const cached = cache?.lookup(rel, key) ?? null;
        if (cached) f.hash = cached;
        else toHash.push({ f, st: key });
      }
      // sockets, fifos, devices in a context are skipped, as docker does.
    }
  };
  await walk('', false);

  let bytes = 0;
  for (const f of out) if (f.type === 'file') bytes += f.size;
  let next = 0;
  let hashed = 0;
  const worker = async () => {
    while (next < toHash.length) {
      const job = toHash[next++];
      job.f.hash = await hashFile(path.join(root, job.f.rel));
      cache?.record(job.f.rel, job.st, job.f.hash);
      if (++hashed % 500 === 0) onProgress?.(hashed, bytes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_PARALLEL, toHash.length) }, worker));
  await cache?.save();

  const h = createHash('sha256');
  for (const f of out) h.update(`${f.rel}\0${f.type}\0${(f.mode & 0o7777).toString(8)}\0${f.hash ?? ''}\n`);
  onProgress?.(out.length, bytes);
  return { files: out, digest: `sha256:${h.digest('hex')}`, bytes };
}

function entry(rel: string, type: ContextFile['type'], st: fs.BigIntStats): ContextFile {
  return { rel, type, mode: Number(st.mode), size: Number(st.size), mtimeMs: Number(st.mtimeMs) };
}

// ---- include patterns (COPY sources) ----

// COPY sources as include patterns: a path is included when the pattern
// matches it or one of its parents; a dir is descended into when it may
// contain a match (its components match a prefix of the pattern). Each
// component is a filepath.Match glob (util/glob.ts).
export function includeMatcher(patterns: string[]): (rel: string, isDir: boolean) => 'yes' | 'no' | 'descend' {
  const compiled = patterns.map((p) => {
    const clean = path.posix.normalize('/' + p).slice(1).replace(/\/$/, '');
    return clean === '' || clean === '.' ? null : clean.split('/').map((part) => compileGlob(part));
  });
  if (compiled.some((c) => c === null)) return () => 'yes'; // "." includes everything
  return (rel, isDir) => {
    const parts = rel.split('/');
    let descend = false;
    for (const pat of compiled as Glob[][]) {
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
