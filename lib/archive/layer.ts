// One pass from a layer tar to a stored blob:
//   tar → sha256 (diffID) → compress → sha256 (digest) → sink
// Nothing is buffered beyond the stream high-water marks (and, for gzip, a few chunks in flight).
// gzip goes through ParallelGzip (pgzip.ts): deflated in 1 MiB chunks on the addon's codec pool,
// one deterministic gzip member; zstd through libzstd (compression.ts).
// An empty diff (the tar of no entries: 1024 zero bytes) gzips to the fixed
// 32-byte blob BuildKit and containerd use, so such layers (WORKDIR of an
// existing directory) get BuildKit's digest and cost no compression.
import { createHash } from 'node:crypto';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { QUEUE_HIGH_WATER, Sha256Stream } from '../host/layerops';
import type { Digest, LayerBlob } from '../images/types';
import { compressStream, mediaTypeFor, type CodecChoice, type Compression } from './compression';
import { layerChunkReturn } from './diff';

export type { LayerBlob };

// Go's gzip of the empty tar with a zero mtime: BuildKit's emptyGZLayer,
// sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1.
export const EMPTY_TAR_GZIP = Buffer.from('1f8b08000000000000ff621805a360148c5800080000ffff2eafb5ef00040000', 'hex');
const EMPTY_TAR_SIZE = 1024;

function tap(onChunk: (b: Buffer) => void): Transform {
  return new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      onChunk(chunk);
      cb(null, chunk);
    },
  });
}

export async function createLayerBlob(
  tar: NodeJS.ReadableStream,
  compression: Compression,
  sink: Writable,
  opts: { level?: number; codecs?: CodecChoice } = {},
): Promise<Required<LayerBlob>> {
  const diff = createHash('sha256');
  let uncompressedSize = 0;
  const src = tar instanceof Readable ? tar : new Readable().wrap(tar);
  const tapU = tap((b) => {
    diff.update(b);
    uncompressedSize += b.length;
  });
  if (compression === 'none') {
    // Hashed off the JS thread: nothing takes these chunks back (layerChunkReturn) to refill
    // them, as the compressors do once they have read one.
    const hash = new Sha256Stream();
    const tapOff = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        uncompressedSize += chunk.length;
        if (hash.pendingBytes < QUEUE_HIGH_WATER) return cb(null, chunk);
        hash.waitBelow().then(() => cb(null, chunk), cb);
      },
    });
    await pipeline(src, tapOff, sink);
    const d: Digest = `sha256:${await hash.digest()}`;
    return { diffId: d, digest: d, size: uncompressedSize, uncompressedSize, mediaType: mediaTypeFor('none') };
  }
  let input: Readable = src;
  if (compression === 'gzip') {
    const head = await peekEmptyTar(src);
    if (head === 'empty') {
      await pipeline(Readable.from([EMPTY_TAR_GZIP]), sink);
      const empty = Buffer.alloc(EMPTY_TAR_SIZE);
      return {
        diffId: `sha256:${createHash('sha256').update(empty).digest('hex')}`,
        digest: `sha256:${createHash('sha256').update(EMPTY_TAR_GZIP).digest('hex')}`,
        size: EMPTY_TAR_GZIP.length,
        uncompressedSize: EMPTY_TAR_SIZE,
        mediaType: mediaTypeFor('gzip'),
      };
    }
    input = head;
  }
  const blob = createHash('sha256');
  let size = 0;
  const tapC = tap((b) => {
    blob.update(b);
    size += b.length;
  });
  const compress = compressStream(compression, opts.level, opts.codecs, layerChunkReturn(tar));
  await pipeline(input, tapU, compress, tapC, sink);
  return {
    diffId: `sha256:${diff.digest('hex')}`,
    digest: `sha256:${blob.digest('hex')}`,
    size,
    uncompressedSize,
    mediaType: mediaTypeFor(compression),
  };
}

// Reads just enough of a tar to tell the empty one (only its 1024-byte end
// marker) from any other: the first header of a tar with entries is not zeros.
// Returns 'empty', or the stream with what was read put back (the chunks themselves, so
// writeLayer can take them back; an async iterator would concatenate them).
async function peekEmptyTar(src: Readable): Promise<'empty' | Readable> {
  const head: Buffer[] = [];
  let n = 0;
  const ended = await new Promise<boolean>((resolve, reject) => {
    const stop = (end: boolean): void => {
      src.pause();
      src.off('data', onData);
      src.off('end', onEnd);
      src.off('error', reject);
      resolve(end);
    };
    const onData = (chunk: Buffer | string): void => {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      head.push(b);
      if (b.subarray(0, Math.max(0, EMPTY_TAR_SIZE - n)).some((x) => x !== 0)) return stop(false); // an entry's header
      n += b.length;
      if (n > EMPTY_TAR_SIZE) stop(false);
    };
    const onEnd = (): void => stop(true);
    src.on('data', onData);
    src.once('end', onEnd);
    src.once('error', reject);
  });
  if (ended && n === EMPTY_TAR_SIZE) return 'empty';
  if (ended) return Readable.from(head, { objectMode: false });
  for (let i = head.length - 1; i >= 0; i--) src.unshift(head[i]);
  return src;
}
