// Parallel gzip: one gzip member whose deflate stream is compressed in fixed-size chunks on the
// addon's codec pool (ISA-L's igzip, or zlib), the way pigz does it.
//
// - The input is cut at fixed offsets (chunkSize), so the output depends only on the bytes, the
//   level, the codec and the chunk size: never on the number of threads or on timing (results
//   are emitted in order). The codec counts: ISA-L and zlib write different (equally valid)
//   deflate, so an addon built without ISA-L gives other blob digests for the same layer.
// - Every chunk is raw deflate primed with the previous chunk's last 32 KiB as dictionary (so the
//   ratio stays close to a single stream) and ended with a sync flush (byte-aligned, not final),
//   so the pieces concatenate into one valid deflate stream. The last chunk (empty when the
//   input ends on a chunk boundary) closes it with a final block.
// - Each job returns its chunk's CRC-32 too; they are folded in order into the trailer's, so
//   the JS thread never reads the data. A chunk that one write holds whole (writeLayer writes
//   whole 1 MiB chunks) is a view of it; only chunks that span writes are copied together. The
//   output is the addon's Buffer, exactly the compressed chunk (copied out only when that is
//   much smaller than the block it was written into).
// - At most `inFlight` chunks are queued, compressing or waiting for their turn per stream:
//   memory is bounded whatever the layer size, and the writer is held back beyond that.
// - Levels 1-3 are ISA-L's 1-3 (1 is `igzip -1`); 0 (stored) and 4-9 are zlib's: ISA-L's best
//   ratio is about zlib's 1, and who asks for 6 or 9 wants zlib's ratio.
import { Transform, type TransformCallback } from 'node:stream';
import { codecAddon, gzipCodec, type CodecAddon } from './codecs';
import { HostError } from '../util/errors';

export const PGZIP_CHUNK = 1024 * 1024;
const WINDOW = 32 * 1024; // deflate's window: the most of the previous chunk a match can reach

export type DeflateChunk = CodecAddon['deflateChunk'];

export interface PGzipOptions {
  level?: number; // gzip level 0-9, default 1
  codec?: 'isal' | 'zlib'; // default: gzipCodec() (ISA-L when the addon has it)
  chunkSize?: number; // default PGZIP_CHUNK; at least 32 KiB
  inFlight?: number; // chunks out at once; default 2 × codec threads + 2
  deflate?: DeflateChunk; // the addon's deflateChunk (tests wrap it to watch the work in flight)
  consumed?: (chunk: Buffer) => void; // told when a written chunk is no longer read
}

// gzip header (RFC 1952) as zlib writes it: no name, mtime 0, XFL from the level, OS 3 (Unix).
function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 || level === 0 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
}

interface Done {
  out: Buffer;
  crc: number;
  len: number;
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly codec: 'isal' | 'zlib';
  private readonly chunkSize: number;
  private readonly inFlight: number;
  private readonly deflate: DeflateChunk;
  private readonly combine: CodecAddon['crc32Combine'];
  private readonly consumed: ((chunk: Buffer) => void) | undefined;

  private crc = 0;
  private total = 0;
  private started = false;
  // the chunk being filled
  private cur: Buffer | null = null; // made when a chunk must be copied together (often never)
  private curLen = 0;
  private prevTail: Buffer | null = null;
  private seq = 0; // next chunk number to dispatch
  private emitSeq = 0; // next chunk number to push
  private done = new Map<number, Done>();
  // A chunk's input is read by its job and, as dictionary, by the next chunk's: it is released
  // once both are done. A copy buffer then comes back here, so a long layer allocates a few, not
  // one per MiB that waits for V8 to collect it; a viewed write is given back (consumed) once
  // no chunk views it.
  private inputs = new Map<number, { copy?: Buffer; write?: Buffer }>(); // chunk number → what it reads
  private holds = new Map<Buffer, number>(); // write → chunks viewing it, not yet released
  private spareIn: Buffer[] = [];
  private waiting: (() => void) | null = null; // a write or flush waiting for results

  constructor(opts: PGzipOptions = {}) {
    super({ highWaterMark: 1024 * 1024 });
    const addon = codecAddon();
    if (!addon) throw new HostError('parallel gzip needs the native addon with its codecs', { hint: 'rebuild it with `npm rebuild`' });
    this.level = opts.level ?? 1;
    if (!Number.isInteger(this.level) || this.level < 0 || this.level > 9) throw new RangeError(`gzip level must be 0..9, got ${this.level}`);
    const want = opts.codec ?? gzipCodec();
    // ISA-L's levels 1-3 are gzip's 1-3; the rest is zlib's
    this.codec = want === 'isal' && this.level >= 1 && this.level <= 3 ? 'isal' : 'zlib';
    this.chunkSize = opts.chunkSize ?? PGZIP_CHUNK;
    if (!(this.chunkSize >= WINDOW)) throw new RangeError(`chunk size must be >= ${WINDOW}, got ${this.chunkSize}`);
    this.inFlight = opts.inFlight ?? 2 * addon.codecThreads() + 2;
    this.deflate = opts.deflate ?? addon.deflateChunk;
    this.combine = addon.crc32Combine;
    this.consumed = opts.consumed;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.total += chunk.length;
    this.feed(chunk, 0, cb);
  }

  // Cut `chunk` from `off` into fixed-size chunks (a view where it holds a whole one, a copy
  // otherwise), pausing whenever `inFlight` are out (one big write must not put the whole of
  // itself in flight). The bytes of a chunk are the same either way, so is the output.
  private feed(chunk: Buffer, off: number, cb: TransformCallback): void {
    while (off < chunk.length) {
      if (this.curLen === 0 && chunk.length - off >= this.chunkSize) {
        this.holds.set(chunk, (this.holds.get(chunk) ?? 0) + 1);
        this.dispatch(chunk.subarray(off, (off += this.chunkSize)), false, { write: chunk });
      } else {
        const n = Math.min(chunk.length - off, this.chunkSize - this.curLen);
        this.cur ??= this.spareIn.pop() ?? Buffer.allocUnsafeSlow(this.chunkSize);
        chunk.copy(this.cur, this.curLen, off, off + n);
        this.curLen += n;
        off += n;
        if (this.curLen < this.chunkSize) break;
        const full = this.cur;
        this.cur = null;
        this.curLen = 0;
        this.dispatch(full, false, { copy: full });
      }
      if (this.seq - this.emitSeq >= this.inFlight) {
        const at = off;
        return this.whenBelow(this.inFlight, () => this.feed(chunk, at, cb));
      }
    }
    if (!this.holds.has(chunk)) this.consumed?.(chunk);
    cb();
  }

  // Chunk n's input is no longer read: its copy buffer is spare, its write given back once no
  // other chunk views it.
  private release(n: number): void {
    const input = this.inputs.get(n);
    if (!input) return;
    this.inputs.delete(n);
    if (input.copy) this.spareIn.push(input.copy);
    if (input.write) {
      const left = this.holds.get(input.write)! - 1;
      if (left > 0) this.holds.set(input.write, left);
      else {
        this.holds.delete(input.write);
        this.consumed?.(input.write);
      }
    }
  }

  override _flush(cb: TransformCallback): void {
    this.dispatch(this.cur ? this.cur.subarray(0, this.curLen) : Buffer.alloc(0), true, {});
    this.whenBelow(1, () => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.total % 2 ** 32, 4);
      cb(null, trailer);
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.done.clear();
    this.inputs.clear();
    this.holds.clear();
    this.spareIn = [];
    this.waiting = null;
    cb(err);
  }

  private dispatch(data: Buffer, last: boolean, input: { copy?: Buffer; write?: Buffer }): void {
    if (!this.started) {
      this.started = true;
      this.push(gzipHeader(this.level));
    }
    const n = this.seq++;
    const dict = this.prevTail;
    // A view, not a copy: a dispatched chunk is never written again.
    this.prevTail = data.length >= WINDOW ? data.subarray(data.length - WINDOW) : null;
    if (data.length === this.chunkSize) this.inputs.set(n, input);
    let job: Promise<[Buffer, number]>;
    try {
      job = this.deflate(this.codec, this.level, data, dict, last);
    } catch (err) {
      job = Promise.reject(err);
    }
    job.then(
      ([out, crc]) => {
        if (this.destroyed) return;
        this.done.set(n, { out, crc, len: data.length });
        while (this.done.has(this.emitSeq)) {
          const d = this.done.get(this.emitSeq)!;
          this.done.delete(this.emitSeq++);
          // Chunk k-1's input is free once job k (which read its tail as dictionary) is done.
          this.release(this.emitSeq - 2);
          this.crc = this.combine(this.crc, d.crc, d.len);
          this.push(d.out);
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
