// Pull checks a layer while it downloads, on the same pass: the bytes that go to the
// ingest also go through the decompressor, so a layer is stored only when its stream
// ends cleanly (gzip's trailer: CRC and length) and its uncompressed digest (the diff_id)
// is known; the image is named only when every downloaded layer's diff_id is the one
// its config lists. Without this a truncated gzip or a wrong config was stored with
// exit 0 and failed at unpack, naming nothing.
import { Writable } from 'node:stream';
import { AutoDecompress } from '../archive/compression';
import { QUEUE_HIGH_WATER, Sha256Stream } from '../host/layerops';
import type { Descriptor, Digest, ImageConfig } from '../images/types';
import { ContentError } from '../util/errors';
import { ForwardingSink } from '../util/sink';

// Which image and which of its layers a download is (for messages).
export interface LayerOrigin {
  image: string;
  // 1-based position in the manifest, and the manifest's layer count.
  position: number;
  total: number;
}

export function describeLayer(desc: Descriptor, origin: LayerOrigin | undefined, source: string): string {
  return origin ? `layer ${origin.position} of ${origin.total} (${desc.digest}) of image ${origin.image}` : `layer ${desc.digest} from ${source}`;
}

export function isLayerMediaType(mt: string): boolean {
  return /\.layer\.|rootfs\.diff/.test(mt);
}

// What a layer's bytes go through beside the ingest: it decompresses them and hashes
// the result. Its input never errors; result() resolves to the diff_id, or rejects with
// why the layer could not be taken: a ContentError for bytes that do not decompress, a
// HostError or errno for the local disk. LayerVerifier is the pull's own; an unpack
// applying the layer as it downloads is another (snapshot/unpack.ts).
export interface LayerCheck extends Writable {
  result(): Promise<Digest>;
}

// A sink beside the ingest: decompresses what it is given and hashes the result. Its
// input never errors (a corrupt transfer is the digest's to judge and is retried);
// result() tells whether the whole stream decompressed, and to what.
export class LayerVerifier extends ForwardingSink<AutoDecompress> implements LayerCheck {
  private readonly hash = new Sha256Stream(); // off the JS thread
  private readonly ended: Promise<void>;

  constructor() {
    super(new AutoDecompress());
    this.inner.on('data', (b: Buffer) => {
      this.hash.update(b);
      if (this.hash.pendingBytes < QUEUE_HIGH_WATER) return;
      // the hash lags: hold the decompressor (and so, through 'drain', the download) back
      this.inner.pause();
      this.hash.waitBelow().then(
        () => this.inner.resume(),
        (err: Error) => this.fail(err),
      );
    });
    this.ended = new Promise((resolve) => {
      this.inner.once('end', resolve);
      this.inner.once('error', (err) => {
        this.fail(err);
        resolve();
      });
    });
  }

  // Ends the stream; resolves to the diff_id, or rejects with why the bytes do not decompress.
  async result(): Promise<Digest> {
    if (!this.writableEnded) this.end();
    await this.ended;
    if (this.failure) throw this.failure;
    return `sha256:${await this.hash.digest()}`;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

// A layer whose bytes match its digest but do not decompress: the registry holds it so.
export function undecompressable(what: string, err: unknown): ContentError {
  const reason = err instanceof Error ? err.message : String(err);
  return new ContentError(`${what} does not decompress: ${reason}`, {
    hint: 'the registry holds a damaged layer (its digest matches, so it was pushed this way); nothing was stored — push the image again',
    cause: err,
  });
}

// The config's diff_ids against what the downloaded layers decompressed to.
export function checkDiffIds(image: string, layers: Descriptor[], config: ImageConfig, got: ReadonlyMap<Digest, Digest>): void {
  const listed = config.rootfs?.diff_ids ?? [];
  if (listed.length !== layers.length) {
    throw new ContentError(`image ${image}: its config lists ${listed.length} layer diff IDs but its manifest has ${layers.length} layers`, {
      hint: 'the image is malformed in the registry; nothing was named — build and push it again',
    });
  }
  layers.forEach((l, i) => {
    const diffId = got.get(l.digest);
    if (diffId && diffId !== listed[i]) {
      throw new ContentError(`${describeLayer(l, { image, position: i + 1, total: layers.length }, '')} decompresses to ${diffId}, but the image config lists ${listed[i]}`, {
        hint: 'the image config does not describe its layers (a broken push); nothing was named — build and push the image again',
      });
    }
  });
}
