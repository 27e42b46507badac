// One pass from a layer tar to a stored blob:
//   tar → sha256 (diffID) → compress → sha256 (digest) → sink
// Nothing is buffered beyond the stream high-water marks (and, for gzip, a few chunks in flight).
// gzip goes through ParallelGzip (pgzip.ts): deflated in 1 MiB chunks on the addon's codec pool,
// one deterministic gzip member; zstd through libzstd (compression.ts).
import { createHash } from 'node:crypto';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest, LayerBlob } from '../images/types';
import { compressStream, mediaTypeFor, type CodecChoice, type Compression } from './compression';

export type { LayerBlob };

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
    await pipeline(src, tapU, sink);
    const d: Digest = `sha256:${diff.digest('hex')}`;
    return { diffId: d, digest: d, size: uncompressedSize, uncompressedSize, mediaType: mediaTypeFor('none') };
  }
  const blob = createHash('sha256');
  let size = 0;
  const tapC = tap((b) => {
    blob.update(b);
    size += b.length;
  });
  const compress = compressStream(compression, opts.level, opts.codecs);
  await pipeline(src, tapU, compress, tapC, sink);
  return {
    diffId: `sha256:${diff.digest('hex')}`,
    digest: `sha256:${blob.digest('hex')}`,
    size,
    uncompressedSize,
    mediaType: mediaTypeFor(compression),
  };
}
