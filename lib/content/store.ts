// Content-addressed blob store: <state>/content/blobs/sha256/<hex>.
//
// Writes go to <state>/ingest/<random> while being hashed, are verified against
// the expected digest/size, fsynced and renamed into place, so a reader never
// sees a partial blob and a crash leaves at most a stray ingest file. The writer
// holds an flock on its ingest file until it is renamed or removed: the kernel
// drops it when the process dies, so a file nobody holds is a dead process's
// leftover (state/leftovers.ts reclaims those; `img du` counts them).
// Blobs are immutable; two writers of the same blob both succeed (rename of
// identical content over identical content is harmless).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentError, DiskFullError, hostErrorClass, isErrno, LockBusyError, NotFoundError } from '../util/errors';
import type { Digest } from '../images/types';
import { registerCleanup } from '../host/cleanup';
import { lockFile, type FileLock } from '../host/index';
import { Sha256Stream } from '../host/layerops';
import { diskFullError, diskSpace, syncDir } from '../util/fsutil';
import { debug } from '../util/log';
import { digestHex, isDigest, parseDigest } from './digest';

export interface Expected {
  digest?: Digest;
  size?: number;
}

export interface WriteResult {
  digest: Digest;
  size: number;
}

export interface Ingest {
  // Write the blob's bytes here and end() it (commit() ends it if you did not).
  stream: Writable;
  // Verify and move into the store. Rejects with a ContentError on mismatch (nothing stored).
  // `check` runs after the digest and size are verified, before the blob becomes visible:
  // a rejection stores nothing (pull checks that a layer decompresses).
  commit(check?: () => Promise<void>): Promise<WriteResult>;
  // Discard everything written so far.
  abort(): Promise<void>;
}

export class ContentStore {
  readonly root: string;
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(readonly stateDir: string) {
    this.root = path.join(stateDir, 'content');
    this.blobsDir = path.join(this.root, 'blobs', 'sha256');
    this.ingestDir = path.join(stateDir, 'ingest');
  }

  blobPath(digest: Digest): string {
    return path.join(this.blobsDir, digestHex(parseDigest(digest)));
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== null;
  }

  async stat(digest: Digest): Promise<{ size: number } | null> {
    try {
      const st = await fsp.stat(this.blobPath(digest));
      return { size: st.size };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  createReadStream(digest: Digest): Readable {
    const p = this.blobPath(digest);
    if (!fs.existsSync(p)) throw this.missing(digest);
    return fs.createReadStream(p);
  }

  async readBytes(digest: Digest): Promise<Buffer> {
    try {
      return await fsp.readFile(this.blobPath(digest));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw this.missing(digest);
      throw err;
    }
  }

  async readJson<T>(digest: Digest): Promise<T> {
    const buf = await this.readBytes(digest);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (err) {
      throw new ContentError(`blob ${digest} is not valid JSON`, {
        hint: 'the image metadata is corrupt; remove the image (img rm) and pull or build it again',
        cause: err,
      });
    }
  }

  async write(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream, expected: Expected = {}): Promise<WriteResult> {
    if (expected.digest) {
      const st = await this.stat(expected.digest);
      if (st && (expected.size === undefined || st.size === expected.size)) {
        await drain(source);
        return { digest: expected.digest, size: st.size };
      }
    }
    const ing = this.ingest(expected);
    try {
      await pipeline(source as AsyncIterable<Uint8Array>, ing.stream);
    } catch (err) {
      await ing.abort();
      throw err;
    }
    return ing.commit();
  }

  async writeBytes(data: Uint8Array | string, expected: Expected = {}): Promise<WriteResult> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const ing = this.ingest(expected);
    ing.stream.end(buf);
    return ing.commit();
  }

  ingest(expected: Expected = {}): Ingest {
    if (expected.digest) parseDigest(expected.digest);
    return new IngestWriter(this, expected).handle();
  }

  async delete(digest: Digest): Promise<void> {
    try {
      await fsp.unlink(this.blobPath(digest));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  async *list(): AsyncIterable<WriteResult> {
    let names: string[];
    try {
      names = await fsp.readdir(this.blobsDir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const name of names) {
      const digest = `sha256:${name}`;
      if (!isDigest(digest)) continue;
      try {
        const st = await fsp.stat(path.join(this.blobsDir, name));
        yield { digest, size: st.size };
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err; // deleted concurrently
      }
    }
  }

  missing(digest: Digest): NotFoundError {
    return new NotFoundError(`blob ${digest} not found in the content store (${this.blobsDir})`, {
      hint: 'pull or build the image again; another img process may have removed it',
    });
  }
}

async function drain(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): Promise<void> {
  // Consume without hashing or writing: cheaper than storing, and the producer
  // (an HTTP body, a child's stdout) still finishes normally.
  for await (const _ of source as AsyncIterable<Uint8Array>) {
    // discard
  }
}

function ingestName(dir: string): string {
  return path.join(dir, `${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

// One in-progress blob. Data is hashed and appended to an ingest file; the
// file handle is opened lazily on the first write so an unused ingest costs nothing.
class IngestWriter {
  private readonly hash = new Sha256Stream(); // off the JS thread: blobs are large
  private size = 0;
  private tmp: string;
  private fh: fsp.FileHandle | null = null;
  private lock: FileLock | null = null;
  // Removes the partial file on SIGINT/SIGTERM (host/cleanup.ts) while it is open.
  private unregister: (() => void) | null = null;
  private opening: Promise<fsp.FileHandle | null> | null = null;
  private present: { size: number } | null = null;
  private failure: Error | null = null;
  private done = false;
  readonly stream: Writable;

  constructor(
    private readonly store: ContentStore,
    private readonly expected: Expected,
  ) {
    this.tmp = ingestName(store.ingestDir);
    this.stream = new Writable({
      highWaterMark: 1 << 20,
      writev: (chunks, cb) => {
        this.append(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
      },
      final: (cb) => {
        this.ensureOpen().then(() => cb(), cb); // an empty blob still gets a file
      },
    });
  }

  // Opens the ingest file, or returns null when the expected blob is already
  // stored: then the data is only counted and dropped.
  private ensureOpen(): Promise<fsp.FileHandle | null> {
    if (this.fh || this.present) return Promise.resolve(this.fh);
    if (!this.opening) {
      this.opening = (async () => {
        if (this.expected.digest) {
          const st = await this.store.stat(this.expected.digest);
          if (st && (this.expected.size === undefined || st.size === this.expected.size)) {
            this.present = st;
            return null;
          }
        }
        await fsp.mkdir(this.store.ingestDir, { recursive: true });
        // Between creating the file and locking it, a GC may take it for a dead
        // process's leftover (it removes only what it could lock): then start a new one.
        // Without flock (no addon, a filesystem without locks) the file goes unlocked
        // and the GC judges it by age.
        for (let tries = 0; ; tries++) {
          const fh = await fsp.open(this.tmp, 'wx', 0o644);
          this.unregister?.();
          const tmp = this.tmp;
          this.unregister = registerCleanup(`partial blob ${tmp}`, () => fs.rmSync(tmp, { force: true }));
          try {
            this.lock = await lockFile(this.tmp, 'exclusive', { wait: false, create: false });
          } catch (err) {
            if (tries < 3 && (err instanceof LockBusyError || isErrno(err, 'ENOENT'))) {
              await fh.close();
              this.tmp = ingestName(this.store.ingestDir);
              continue;
            }
            debug(`ingest ${this.tmp} stays unlocked: ${(err as Error).message}`);
          }
          this.fh = fh;
          return fh;
        }
      })();
    }
    return this.opening;
  }

  private async append(bufs: Buffer[]): Promise<void> {
    try {
      await this.appendNow(bufs);
    } catch (err) {
      throw await this.named(err);
    }
  }

  // A full disk as a DiskFullError naming the ingest file and the space left (the
  // caller's abort removes the file: nothing half-written stays).
  private async named(err: unknown): Promise<unknown> {
    if (hostErrorClass(err) !== DiskFullError) return err;
    return diskFullError(this.tmp, `blob ${this.expected.digest ?? '(being written)'}`, await diskSpace(this.store.ingestDir), err);
  }

  private async appendNow(bufs: Buffer[]): Promise<void> {
    const fh = await this.ensureOpen();
    let n = 0;
    for (const b of bufs) {
      if (fh) this.hash.update(b);
      n += b.length;
    }
    await this.hash.waitBelow();
    this.size += n;
    const { size: want, digest } = this.expected;
    if (want !== undefined && this.size > want) {
      throw new ContentError(`blob ${digest ?? '(unknown digest)'} is larger than expected: more than ${want} bytes received`, {
        hint: 'the source sent different content than its descriptor names; retry, or check the registry/mirror',
      });
    }
    if (!fh) return; // already stored: count and drop
    let off = 0;
    while (off < bufs.length) {
      // writev may write partially; loop until every buffer is out.
      const batch = bufs.slice(off);
      const total = batch.reduce((a, b) => a + b.length, 0);
      const { bytesWritten } = await fh.writev(batch);
      if (bytesWritten === total) break;
      let left = bytesWritten;
      while (left >= bufs[off].length) left -= bufs[off++].length;
      if (left > 0) bufs[off] = bufs[off].subarray(left);
    }
  }

  handle(): Ingest {
    this.stream.on('error', (err) => {
      this.failure = err;
    });
    return {
      stream: this.stream,
      commit: (check) => this.commit(check),
      abort: () => this.abort(),
    };
  }

  private async finished(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.stream.writableFinished) return;
    await new Promise<void>((resolve, reject) => {
      const onFinish = () => {
        this.stream.off('error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        this.stream.off('finish', onFinish);
        reject(err);
      };
      this.stream.once('finish', onFinish);
      this.stream.once('error', onError);
      if (!this.stream.writableEnded) this.stream.end();
    });
  }

  private async commit(check?: () => Promise<void>): Promise<WriteResult> {
    if (this.done) throw new Error('ingest already committed or aborted');
    try {
      await this.finished();
      if (this.present) {
        await check?.();
        this.done = true;
        return { digest: this.expected.digest!, size: this.present.size };
      }
      const digest = `sha256:${await this.hash.digest()}` as Digest;
      const { digest: wantDigest, size: wantSize } = this.expected;
      if (wantSize !== undefined && wantSize !== this.size) {
        throw new ContentError(`size mismatch for blob ${wantDigest ?? digest}: expected ${wantSize} bytes, got ${this.size}`, {
          hint: 'the source sent different content than its descriptor names; retry, or check the registry/mirror',
        });
      }
      if (wantDigest !== undefined && wantDigest !== digest) {
        throw new ContentError(`digest mismatch: expected ${wantDigest}, got ${digest} (${this.size} bytes)`, {
          hint: 'the source sent different content than its descriptor names; retry, or check the registry/mirror',
        });
      }
      await check?.();
      const fh = (await this.ensureOpen())!;
      // Independent steps at once (the last layer, the config and the manifest of a
      // build wait for these one blob after another): the data made durable, the file
      // made read-only, the blobs dir made; then the rename, made durable in turn.
      await Promise.all([fh.sync(), fsp.chmod(this.tmp, 0o444), fsp.mkdir(this.store.blobsDir, { recursive: true })]);
      await fh.close();
      this.fh = null;
      await fsp.rename(this.tmp, this.store.blobPath(digest));
      await Promise.all([this.unlock(), syncDir(this.store.blobsDir)]);
      this.done = true;
      return { digest, size: this.size };
    } catch (err) {
      await this.abort();
      throw await this.named(err);
    }
  }

  private async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (!this.stream.destroyed) this.stream.destroy();
    if (this.opening) await this.opening.catch(() => undefined);
    if (this.fh) {
      await this.fh.close().catch(() => undefined);
      this.fh = null;
    }
    await fsp.rm(this.tmp, { force: true });
    await this.unlock();
  }

  private async unlock(): Promise<void> {
    this.unregister?.();
    this.unregister = null;
    const lock = this.lock;
    this.lock = null;
    await lock?.release();
  }
}
