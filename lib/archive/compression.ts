// Layer compression: detection by magic bytes, and the streams that compress and decompress,
// all streaming with bounded memory. Which implementation runs is codecs.ts's choice: the
// addon's ISA-L/zlib and libzstd off the JS thread; node:zlib and the `zstd` program when the
// addon has no codecs (or IMG_GZIP_CODEC / IMG_ZSTD_CODEC ask for them).
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import * as zlib from 'node:zlib';
import { codecAddon, corruptData, gzipCodec, NativeCodecDuplex, zstdCodec, type GzipCodec, type ZstdCodec } from './codecs';
import { ParallelGzip } from './pgzip';
import { ContentError, HostError } from '../util/errors';

export type Compression = 'gzip' | 'zstd' | 'none';

// Bigger zlib chunks than the 16 KiB default: fewer callbacks into the thread pool.
const ZLIB_CHUNK = 128 * 1024;

/**
 * Default gzip level: 1. With ISA-L (pgzip.ts) level 1 compresses at several times zlib's
 * speed for a blob ~3% bigger than zlib -1's; zlib -6 takes twice zlib -1's CPU for an 8%
 * smaller blob (bench/archive.ts). Docker/BuildKit default to 6; every gzip reader accepts
 * any level, so callers that want smaller blobs pass a level (createLayerBlob's opts.level).
 */
export const DEFAULT_GZIP_LEVEL = 1;
export const DEFAULT_ZSTD_LEVEL = 3;

/** Which implementation to use, for tests and benches; by default codecs.ts decides. */
export interface CodecChoice {
  gzip?: GzipCodec;
  zstd?: ZstdCodec;
}

export function detectCompression(firstBytes: Buffer): Compression {
  if (firstBytes.length >= 2 && firstBytes[0] === 0x1f && firstBytes[1] === 0x8b) return 'gzip';
  if (
    firstBytes.length >= 4 &&
    firstBytes[0] === 0x28 &&
    firstBytes[1] === 0xb5 &&
    firstBytes[2] === 0x2f &&
    firstBytes[3] === 0xfd
  )
    return 'zstd';
  return 'none';
}

export function mediaTypeFor(c: Compression): string {
  switch (c) {
    case 'gzip':
      return 'application/vnd.oci.image.layer.v1.tar+gzip';
    case 'zstd':
      return 'application/vnd.oci.image.layer.v1.tar+zstd';
    default:
      return 'application/vnd.oci.image.layer.v1.tar';
  }
}

export function decompressStream(c: Compression, codecs: CodecChoice = {}): Duplex {
  switch (c) {
    case 'gzip': {
      const codec = gzipCodec(codecs.gzip);
      if (codec === 'node') return nodeGunzip();
      return new NativeCodecDuplex(new (codecAddon()!.CodecStream)(`gunzip-${codec}`), 'gzip');
    }
    case 'zstd':
      if (zstdCodec(codecs.zstd) === 'libzstd') return new NativeCodecDuplex(new (codecAddon()!.CodecStream)('zstd-decompress'), 'zstd');
      return new ChildPipe('zstd', ['-dc', '-q'], 'decompress');
    default:
      return new PassThrough({ highWaterMark: ZLIB_CHUNK });
  }
}

// consumed: told when a written chunk is no longer read (the parallel gzip compresses a whole
// chunk in place; writeLayer takes such chunks back instead of allocating new ones).
export function compressStream(c: Compression, level?: number, codecs: CodecChoice = {}, consumed?: (chunk: Buffer) => void): Duplex {
  switch (c) {
    case 'gzip': {
      const codec = gzipCodec(codecs.gzip);
      if (codec === 'node') return zlib.createGzip({ level: level ?? DEFAULT_GZIP_LEVEL, chunkSize: ZLIB_CHUNK });
      return new ParallelGzip({ level: level ?? DEFAULT_GZIP_LEVEL, codec, consumed });
    }
    case 'zstd': {
      const lvl = level ?? DEFAULT_ZSTD_LEVEL;
      if (!Number.isInteger(lvl) || lvl < 1 || lvl > 19) throw new RangeError(`zstd level must be 1..19, got ${lvl}`);
      if (zstdCodec(codecs.zstd) === 'program') return new ChildPipe('zstd', ['-c', '-q', '-T0', `-${lvl}`], 'compress');
      // Workers: the codec pool's size; any count >= 1 writes the same bytes (addon/zstd.cc).
      const addon = codecAddon()!;
      return new NativeCodecDuplex(new addon.CodecStream('zstd-compress', lvl, addon.codecThreads()), 'zstd');
    }
    default:
      return new PassThrough({ highWaterMark: ZLIB_CHUNK });
  }
}

// node:zlib's gunzip (no addon), its data errors reported as the addon's are.
function nodeGunzip(): Duplex {
  const g = zlib.createGunzip({ chunkSize: ZLIB_CHUNK });
  const destroy = g._destroy;
  g._destroy = function (err, cb) {
    const zlibCode = typeof (err as NodeJS.ErrnoException | null)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('Z_');
    destroy.call(this, zlibCode ? corruptData('gzip', err!.message, g.bytesWritten, undefined, err) : err, cb);
  };
  return g;
}

// The programs filters run, with the Debian package that has them and what needs them.
const PROGRAMS: Record<string, { pkg: string; use: string }> = {
  zstd: { pkg: 'zstd', use: 'zstd layers' },
  bzip2: { pkg: 'bzip2', use: 'ADD of a bzip2-compressed archive' },
  xz: { pkg: 'xz-utils', use: 'ADD of an xz-compressed archive' },
};

/**
 * A filter program as a Duplex: writes go to its stdin, its stdout is readable,
 * backpressure both ways; a non-zero exit (or a missing program) is a stream error.
 * Destroying the stream kills the child.
 */
class ChildPipe extends Duplex {
  private child: ChildProcess;
  private stderr = '';
  private exited = false;
  private stdoutEnded = false;
  private exitCode: number | null = null;

  constructor(
    private readonly prog: string,
    args: string[],
    private readonly direction: 'compress' | 'decompress',
  ) {
    super({ readableHighWaterMark: ZLIB_CHUNK, writableHighWaterMark: ZLIB_CHUNK });
    this.child = spawn(prog, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const { stdout, stdin, stderr } = this.child;
    stdout!.on('data', (b: Buffer) => {
      if (!this.push(b)) stdout!.pause();
    });
    stdout!.on('end', () => {
      this.stdoutEnded = true;
      this.maybeEnd();
    });
    stderr!.setEncoding('utf8');
    stderr!.on('data', (s: string) => {
      if (this.stderr.length < 4096) this.stderr += s;
    });
    // EPIPE when the child died early: the exit handler reports the real cause.
    stdin!.on('error', () => {});
    this.child.on('error', (err: NodeJS.ErrnoException) => {
      this.exited = true;
      this.destroy(
        err.code === 'ENOENT'
          ? new HostError(`${prog} is not installed`, { hint: `install the "${PROGRAMS[prog]?.pkg ?? prog}" package (needed for ${PROGRAMS[prog]?.use ?? 'this archive'})`, cause: err })
          : err,
      );
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitCode = code;
      if (code !== 0 && !this.destroyed) {
        const why = `${prog} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${this.stderr.trim().split('\n')[0] || 'no message'}`;
        this.destroy(
          this.direction === 'decompress'
            ? new ContentError(why, { hint: 'the blob is damaged or was cut short; remove it and fetch it again' })
            : new HostError(why, { hint: `check that "${prog}" works on this host` }),
        );
        return;
      }
      this.maybeEnd();
    });
  }

  private maybeEnd(): void {
    if (this.stdoutEnded && this.exited && this.exitCode === 0) this.push(null);
  }

  override _read(): void {
    this.child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const stdin = this.child.stdin!;
    if (stdin.write(chunk)) cb();
    else stdin.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin!.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.exited) this.child.kill('SIGKILL');
    cb(err);
  }
}

// ADD of a local file extracts what docker's archive package reads: a tar, plain or
// compressed with gzip, zstd, bzip2 or xz (the last two through their programs).
export type ArchiveCompression = Compression | 'bzip2' | 'xz';

export function detectArchiveCompression(firstBytes: Buffer): ArchiveCompression {
  if (firstBytes.length >= 3 && firstBytes.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (firstBytes.length >= 6 && firstBytes.toString('latin1', 0, 6) === '\xfd7zXZ\0') return 'xz';
  return detectCompression(firstBytes);
}

export function decompressArchive(c: ArchiveCompression): Duplex {
  return c === 'bzip2' || c === 'xz' ? new ChildPipe(c, ['-dc', '-q'], 'decompress') : decompressStream(c);
}

/**
 * A Transform that looks at the first bytes, picks the decompressor (or none) and
 * streams through it with backpressure. Used by applyLayer so callers pass blobs as-is.
 */
export class AutoDecompress extends Duplex {
  private inner: Duplex | null = null;
  private head: Buffer[] = [];
  private headLen = 0;
  private finalCb: ((err?: Error | null) => void) | null = null;
  compression: Compression | null = null;

  constructor(private readonly codecs: CodecChoice = {}) {
    super({ readableHighWaterMark: ZLIB_CHUNK, writableHighWaterMark: ZLIB_CHUNK });
  }

  private start(): void {
    const first = Buffer.concat(this.head);
    this.head = [];
    this.compression = detectCompression(first);
    const inner = (this.inner = decompressStream(this.compression, this.codecs));
    inner.on('data', (b: Buffer) => {
      if (!this.push(b)) inner.pause();
    });
    inner.on('end', () => {
      this.push(null);
      const cb = this.finalCb;
      this.finalCb = null;
      cb?.();
    });
    inner.on('error', (err) => this.destroy(err));
    if (first.length) this.forward(first, () => {});
  }

  private forward(chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.inner!.write(chunk)) cb();
    else this.inner!.once('drain', () => cb());
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner) return this.forward(chunk, cb);
    this.head.push(chunk);
    this.headLen += chunk.length;
    if (this.headLen >= 4) this.start();
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner) this.start();
    this.finalCb = cb;
    this.inner!.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner?.destroy();
    cb(err);
  }
}
