// Which implementation compresses and decompresses layers in this process, and the stream
// that drives the addon's streaming codecs.
//
// gzip: 'isal' (the addon's ISA-L igzip: several times zlib's speed), 'zlib' (the addon's
//   zlib, same parallel chunks; the fallback when the addon was built without ISA-L) or
//   'node' (one node:zlib stream: when the addon does not load or predates the codecs).
// zstd: 'libzstd' (in the addon) or 'program' (spawns `zstd`).
// The best available is used unless IMG_GZIP_CODEC / IMG_ZSTD_CODEC name another (for
// tests of the fallbacks, and to compare them); asking for one this build lacks is an error
// rather than a silent downgrade.
import { Duplex } from 'node:stream';
import { loadAddon, type NativeAddon, type NativeCodecStream } from '../host/index';
import { ContentError, HostError, UsageError } from '../util/errors';

export type GzipCodec = 'isal' | 'zlib' | 'node';
export type ZstdCodec = 'libzstd' | 'program';
const GZIP_CODECS: readonly GzipCodec[] = ['isal', 'zlib', 'node'];
const ZSTD_CODECS: readonly ZstdCodec[] = ['libzstd', 'program'];

export type CodecAddon = Required<Pick<NativeAddon, 'codecVersions' | 'codecThreads' | 'deflateChunk' | 'crc32Combine' | 'CodecStream'>>;

let cached: CodecAddon | null | undefined;

/** The addon's codec functions, or null when the addon does not load or has none. */
export function codecAddon(): CodecAddon | null {
  if (cached !== undefined) return cached;
  try {
    const a = loadAddon();
    cached = typeof a.deflateChunk === 'function' && typeof a.CodecStream === 'function' ? (a as CodecAddon) : null;
  } catch {
    cached = null;
  }
  return cached;
}

function available(): { gzip: GzipCodec[]; zstd: ZstdCodec[] } {
  const a = codecAddon();
  return {
    gzip: [...(a?.codecVersions.isal ? (['isal'] as const) : []), ...(a ? (['zlib'] as const) : []), 'node'],
    zstd: [...(a?.codecVersions.zstd ? (['libzstd'] as const) : []), 'program'],
  };
}

function pick<T extends string>(kind: 'gzip' | 'zstd', known: readonly T[], have: T[], requested: T | undefined, envVar: string): T {
  const fromEnv = process.env[envVar];
  if (requested === undefined && fromEnv) {
    if (!known.includes(fromEnv as T)) {
      throw new UsageError(`${envVar}=${fromEnv} is not a ${kind} codec`, { hint: `use one of: ${known.join(', ')} (or unset it for the fastest available)` });
    }
    requested = fromEnv as T;
  }
  if (requested === undefined) return have[0];
  if (!have.includes(requested)) {
    throw new HostError(`the ${kind} codec '${requested}' is not available in this build (available: ${have.join(', ')})`, {
      hint:
        requested === 'isal' || requested === 'libzstd'
          ? `install ${requested === 'isal' ? 'libisal-dev' : 'libzstd-dev'} and rebuild the addon (npm rebuild)`
          : 'rebuild the native addon (npm rebuild)',
    });
  }
  return requested;
}

/** The gzip codec to use: `requested`, else $IMG_GZIP_CODEC, else the fastest available. */
export function gzipCodec(requested?: GzipCodec): GzipCodec {
  return pick('gzip', GZIP_CODECS, available().gzip, requested, 'IMG_GZIP_CODEC');
}

/** The zstd codec to use: `requested`, else $IMG_ZSTD_CODEC, else the fastest available. */
export function zstdCodec(requested?: ZstdCodec): ZstdCodec {
  return pick('zstd', ZSTD_CODECS, available().zstd, requested, 'IMG_ZSTD_CODEC');
}

/** One line for `img version`: what compresses layers here. */
export function describeCodecs(): string {
  const v = codecAddon()?.codecVersions;
  if (!v) return 'gzip: node:zlib (one stream); zstd: zstd program (the addon has no codecs)';
  const gzip = v.isal ? `ISA-L ${v.isal} (zlib ${v.zlib} for levels 0 and 4-9)` : `zlib ${v.zlib} (no ISA-L in this build)`;
  const zstd = v.zstd ? `libzstd ${v.zstd}` : 'zstd program (no libzstd in this build)';
  return `gzip: ${gzip}; zstd: ${zstd}; ${codecAddon()!.codecThreads()} threads`;
}

/** A corrupt-data failure of a decompressor, as the ContentError users see. */
export function corruptData(format: string, reason: string, read: number, written: number | undefined, cause?: unknown): ContentError {
  const out = written === undefined ? '' : ` (${written} bytes decompressed)`;
  return new ContentError(`${format} data is corrupt after ${read} compressed bytes${out}: ${reason}`, {
    hint: 'the blob is damaged or was cut short; remove it and fetch it again',
    cause,
  });
}

const EMPTY = Buffer.alloc(0);

interface Step {
  out: Buffer;
  read: number;
  written: number;
  done: boolean;
}

/**
 * A Duplex over one of the addon's streaming codecs (gunzip, zstd either way). Each write is
 * handed to a native job off the JS thread; output is pushed as it comes, and when the reader
 * falls behind the next job waits for it: memory stays at a few output buffers per stream,
 * whatever the ratio (a gzip "bomb" inflates no faster than it is read).
 */
export class NativeCodecDuplex extends Duplex {
  private wake: (() => void) | null = null;
  private spare: Buffer | null = null;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(
    private readonly native: NativeCodecStream,
    private readonly format: string, // for messages: 'gzip', 'zstd'
    private readonly outSize = 512 * 1024,
  ) {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.drive(chunk, false).then(() => cb(), cb);
  }

  // Writes that queued up while a job ran go to the next job together: one job per 64 KiB
  // read of a file stream would pay the hand-off to the pool and back for each.
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.drive(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), false).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.drive(EMPTY, true).then(() => {
      this.push(null);
      cb();
    }, cb);
  }

  override _read(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.wake = null;
    this.native.close();
    cb(err);
  }

  // One step of the codec into a fresh (or the spare) output buffer.
  private step(input: Buffer, off: number, end: boolean): Promise<Step> {
    const out = this.spare ?? Buffer.allocUnsafeSlow(this.outSize);
    this.spare = null;
    const run = this.native.run(off ? input.subarray(off) : input, out, end).then(
      ([read, written, done]) => ({ out, read, written, done }),
      (err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'EBADMSG') throw err;
        throw corruptData(this.format, (err as Error).message, this.bytesIn, this.bytesOut, err);
      },
    );
    run.catch(() => undefined); // awaited below; a failure while the reader is slow is not unhandled
    return run;
  }

  private async drive(input: Buffer, end: boolean): Promise<void> {
    let off = 0;
    let next: Promise<Step> | null = this.step(input, off, end);
    while (next) {
      const r: Step = await next;
      const { out, read, written, done } = r;
      off += read;
      this.bytesIn += read;
      this.bytesOut += written;
      if (this.destroyed) return;
      const finished: boolean = end ? done : off >= input.length && written < out.length;
      // the engine fails a stream that cannot complete; this guards against a loop if it did not
      if (!finished && end && read === 0 && written === 0) throw corruptData(this.format, 'the stream ends early', this.bytesIn, this.bytesOut);
      // The next step starts before this output goes on: push() runs the reader at once (a
      // layer apply parses the tar and creates its files), and the codec works meanwhile.
      next = finished ? null : this.step(input, off, end);
      // A half-empty buffer is copied out and reused (zstd's compressor often returns nothing
      // for a write): downstream, a view would keep all of it alive while only its length
      // counts against high-water marks. A fuller one goes downstream as it is.
      if (written <= out.length >> 1) {
        this.spare = out;
        if (written > 0 && !this.push(Buffer.from(out.subarray(0, written)))) await this.readerWants();
      } else if (!this.push(written === out.length ? out : out.subarray(0, written))) await this.readerWants();
    }
  }

  private readerWants(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }
}
