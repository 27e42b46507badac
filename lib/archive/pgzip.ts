// Parallel gzip: one gzip member whose deflate stream is compressed in fixed-size chunks on a
// pool of worker threads, the way pigz does it.
//
// - The input is cut at fixed offsets (chunkSize), so the output depends only on the bytes, the
//   level and the chunk size: never on the pool size or on timing (results are emitted in order).
// - Every chunk is raw deflate primed with the previous chunk's last 32 KiB as dictionary (so the
//   ratio stays close to a single stream) and ended with Z_SYNC_FLUSH (byte-aligned, not final),
//   so the pieces concatenate into one valid deflate stream. The stream is closed by the last
//   chunk, compressed with Z_FINISH (an empty one when the input ends on a chunk boundary).
// - The CRC-32 and length for the trailer are computed on the main thread (zlib.crc32: GB/s).
// - At most `inFlight` chunks are queued or being compressed per stream: memory is bounded
//   whatever the layer size, and the writer is held back (backpressure) beyond that.
// - Inputs smaller than `threshold` never reach the pool: they are gzipped in one zlib call
//   (libuv thread), exactly like the simple path, so small layers pay no worker start-up.
import * as os from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';

export const PGZIP_CHUNK = 1024 * 1024;
export const PGZIP_THRESHOLD = 4 * 1024 * 1024;
const WINDOW = 32 * 1024; // deflate's window: the most of the previous chunk a match can reach

interface Job {
  data: Uint8Array;
  dict: Uint8Array | null;
  level: number;
  last: boolean;
}

// The worker is an eval'd CommonJS script so it works the same under tsx, from tsc's output,
// from an esbuild bundle and inside a single-executable binary (no worker file to locate).
const WORKER_SRC = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', (m) => {
  try {
    const out = zlib.deflateRawSync(m.data, {
      level: m.level,
      dictionary: m.dict || undefined,
      finishFlush: m.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      chunkSize: 256 * 1024,
    });
    parentPort.postMessage({ ok: true, out }, out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? [out.buffer] : []);
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String(err && err.message || err) });
  }
});
`;

type Pending = { job: Job; resolve: (b: Buffer) => void; reject: (e: Error) => void };
interface Slot {
  worker: Worker;
  jobs: Pending[]; // posted to this worker, answered in order
}

// Jobs posted ahead to each worker: it starts the next one without waiting for the main thread
// to wake up and hand it over (on a loaded machine that wake-up left the workers idle).
const PER_WORKER = 2;

/**
 * A fixed set of deflate workers shared by every stream. Workers are ref'd only while they hold
 * a job, so an idle pool never keeps the process alive, and a busy one does (a pending
 * compression is real work the process is waiting for).
 */
export class DeflatePool {
  private slots: Slot[] = [];
  private queue: Pending[] = [];
  private closed = false;

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`pool size must be >= 1, got ${size}`);
  }

  run(job: Job): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('deflate pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Stop the workers (tests; the shared pool is simply left idle and unref'd). */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    for (const q of this.queue.splice(0)) q.reject(new Error('deflate pool is closed'));
    for (const s of slots) for (const j of s.jobs.splice(0)) j.reject(new Error('deflate pool is closed'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length) {
      // the least busy worker; a new one while the pool is not full and all have work
      let slot = this.slots.reduce<Slot | undefined>((m, s) => (!m || s.jobs.length < m.jobs.length ? s : m), undefined);
      if ((!slot || slot.jobs.length > 0) && this.slots.length < this.size) slot = this.spawn();
      if (!slot || slot.jobs.length >= PER_WORKER) return;
      const j = this.queue.shift()!;
      slot.jobs.push(j);
      slot.worker.ref();
      const d = j.job.data;
      // a whole ArrayBuffer of ours (full chunks) moves to the worker instead of being copied
      slot.worker.postMessage(j.job, d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? [d.buffer as ArrayBuffer] : []);
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_SRC, { eval: true }), jobs: [] };
    slot.worker.unref();
    slot.worker.on('message', (m: { ok: true; out: Uint8Array } | { ok: false; message: string }) => {
      const j = slot.jobs.shift()!;
      if (!slot.jobs.length) slot.worker.unref();
      if (m.ok) j.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
      else j.reject(new Error(`deflate failed: ${m.message}`));
      this.pump();
    });
    // A dead worker fails its jobs and is replaced on the next pump.
    const dead = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      for (const j of slot.jobs.splice(0)) j.reject(err);
      if (!this.closed) this.pump();
    };
    slot.worker.on('error', dead);
    slot.worker.on('exit', (code) => dead(new Error(`deflate worker exited (code ${code})`)));
    this.slots.push(slot);
    return slot;
  }
}

let shared: DeflatePool | null = null;
/** One pool per process, as many workers as cores (at least 2), created on first use. */
export function sharedDeflatePool(): DeflatePool {
  return (shared ??= new DeflatePool(Math.max(2, os.availableParallelism?.() ?? os.cpus().length)));
}

export interface PGzipOptions {
  level?: number; // zlib level, default 1
  chunkSize?: number; // default PGZIP_CHUNK
  threshold?: number; // inputs shorter than this use one plain zlib gzip; default PGZIP_THRESHOLD
  pool?: DeflatePool; // default: the shared pool
  inFlight?: number; // chunks queued or compressing at once; default 3 × pool size
}

// gzip header (RFC 1952) as zlib writes it: no name, mtime 0, XFL from the level, OS 3 (Unix).
function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 || level === 0 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly chunkSize: number;
  private readonly threshold: number;
  private readonly inFlight: number;
  private pool: DeflatePool | null;

  private crc = 0;
  private total = 0;
  // the chunk being filled
  private cur: Buffer;
  private curLen = 0;
  // full chunks held back until the input has proven larger than the threshold
  private held: Buffer[] | null = [];
  private prevTail: Buffer | null = null;
  private seq = 0; // next chunk number to dispatch
  private emitSeq = 0; // next chunk number to push
  private done = new Map<number, Buffer>();
  private waiting: (() => void) | null = null; // a write or flush waiting for results

  constructor(opts: PGzipOptions = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.level = opts.level ?? 1;
    this.chunkSize = opts.chunkSize ?? PGZIP_CHUNK;
    this.threshold = opts.threshold ?? PGZIP_THRESHOLD;
    if (!(this.chunkSize >= 1024)) throw new RangeError(`chunk size must be >= 1024, got ${this.chunkSize}`);
    this.pool = opts.pool ?? null;
    this.inFlight = opts.inFlight ?? 3 * (this.pool ?? sharedDeflatePool()).size;
    this.cur = Buffer.allocUnsafeSlow(this.chunkSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.crc = zlib.crc32(chunk, this.crc);
    this.total += chunk.length;
    this.feed(chunk, 0, cb);
  }

  // Copy `chunk` from `off` into fixed-size chunks, pausing whenever `inFlight` are out (one
  // big write must not put the whole of itself in flight).
  private feed(chunk: Buffer, off: number, cb: TransformCallback): void {
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.chunkSize - this.curLen);
      chunk.copy(this.cur, this.curLen, off, off + n);
      this.curLen += n;
      off += n;
      if (this.curLen < this.chunkSize) break;
      const full = this.cur;
      this.cur = Buffer.allocUnsafeSlow(this.chunkSize);
      this.curLen = 0;
      if (this.held) {
        this.held.push(full);
        if (this.held.length * this.chunkSize >= this.threshold) this.goParallel();
      } else this.dispatch(full, false);
      if (!this.held && this.seq - this.emitSeq >= this.inFlight) {
        const at = off;
        return this.whenBelow(this.inFlight, () => this.feed(chunk, at, cb));
      }
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.held && this.total < this.threshold) {
      // small input: one zlib call, same bytes as the plain streaming path
      const all = Buffer.concat([...this.held, this.cur.subarray(0, this.curLen)]);
      this.held = null;
      zlib.gzip(all, { level: this.level }, (err, out) => (err ? cb(err) : cb(null, out)));
      return;
    }
    if (this.held) this.goParallel();
    this.dispatch(this.cur.subarray(0, this.curLen), true);
    this.whenBelow(1, () => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.total % 2 ** 32, 4);
      cb(null, trailer);
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.done.clear();
    this.waiting = null;
    cb(err);
  }

  // Big enough: write the header and send the held chunks; every later chunk goes straight out.
  private goParallel(): void {
    this.push(gzipHeader(this.level));
    for (const h of this.held!.splice(0)) this.dispatch(h, false);
    this.held = null;
  }

  private dispatch(data: Buffer, last: boolean): void {
    const n = this.seq++;
    const dict = this.prevTail;
    // copy: `data` is transferred to the worker
    this.prevTail = data.length >= WINDOW ? Buffer.from(data.subarray(data.length - WINDOW)) : data.length ? Buffer.concat([dict ?? Buffer.alloc(0), data]).subarray(-WINDOW) : dict;
    const pool = (this.pool ??= sharedDeflatePool());
    pool.run({ data, dict, level: this.level, last }).then(
      (out) => {
        if (this.destroyed) return;
        this.done.set(n, out);
        while (this.done.has(this.emitSeq)) {
          const b = this.done.get(this.emitSeq)!;
          this.done.delete(this.emitSeq++);
          this.push(b);
        }
        const w = this.waiting;
        this.waiting = null;
        w?.();
      },
      (err: Error) => this.destroy(err),
    );
  }

  // Call `fn` once fewer than `limit` chunks are dispatched but not yet pushed.
  private whenBelow(limit: number, fn: () => void): void {
    if (this.seq - this.emitSeq < limit) return fn();
    this.waiting = () => this.whenBelow(limit, fn);
  }
}
