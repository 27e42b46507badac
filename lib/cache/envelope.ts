// The envelopes a cache config travels in (see format.ts), written and read the
// same way by the registry and local backends:
//   index form      OCI index (oci-mediatypes=true) or Docker manifest list; its
//                   "manifests" list the layer blobs, then the config descriptor
//   image manifest  OCI image manifest, config = the cache config, layers = the blobs
//                   (image-manifest=true; needs OCI media types)
//   an image        a plain image (or index of images) whose config holds an inline
//                   cache: read only, what `--cache-from REF` of an image finds; of an
//                   index, every image's records (as BuildKit imports them: a
//                   multi-platform build finds each platform's, whatever the host)
import { createHash } from 'node:crypto';
import { layerMediaType } from '../export/index';
import { isIndexMediaType, isManifestMediaType, MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type LayerBlob, type Manifest } from '../images/types';
import { ContentError, UsageError } from '../util/errors';
import {
  blobOf,
  CACHE_CONFIG_MEDIA_TYPE,
  INLINE_CACHE_FIELD,
  layerDescriptor,
  marshalConfig,
  parseConfig,
  parseRecords,
  resultsByKey,
  type CacheConfig,
  type CachedResult,
} from './format';

export interface EnvelopeOptions {
  ociMediaTypes: boolean;
  imageManifest: boolean;
}

export interface Envelope {
  layers: Descriptor[]; // the blobs to store beside it
  config: { desc: Descriptor; bytes: Buffer };
  manifest: { desc: Descriptor; bytes: Buffer }; // the index or image manifest naming both
}

const digestOf = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function checkEnvelopeOptions(o: EnvelopeOptions, flag: string): void {
  if (o.imageManifest && !o.ociMediaTypes) {
    throw new UsageError(`${flag}: image-manifest=true needs oci-mediatypes=true (a Docker manifest cannot carry the cache config)`, {
      hint: 'drop oci-mediatypes=false, or set image-manifest=false',
    });
  }
}

export function makeEnvelope(config: CacheConfig, blobs: Map<Digest, LayerBlob>, created: Map<Digest, string>, o: EnvelopeOptions): Envelope {
  const layers = config.layers
    .map((l) => l.blob)
    .filter((d, i, all) => all.indexOf(d) === i)
    .map((d) => {
      const b = blobs.get(d)!;
      return layerDescriptor(b, layerMediaType(b.mediaType, o.ociMediaTypes), created.get(d));
    });
  const configBytes = Buffer.from(marshalConfig(config));
  const configDesc: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: digestOf(configBytes), size: configBytes.length };
  let doc: Index | Manifest;
  if (o.imageManifest) {
    doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers };
  } else {
    doc = { schemaVersion: 2, mediaType: o.ociMediaTypes ? MediaType.OciIndex : MediaType.DockerManifestList, manifests: [...layers, configDesc] };
  }
  const bytes = Buffer.from(JSON.stringify(doc));
  return { layers, config: { desc: configDesc, bytes: configBytes }, manifest: { desc: { mediaType: doc.mediaType!, digest: digestOf(bytes), size: bytes.length }, bytes } };
}

// Reads small blobs (configs, manifests) of the place the envelope came from.
export type ReadBlob = (desc: Descriptor) => Promise<Buffer>;

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new ContentError(`${what} is not JSON`, { hint: 'export the cache again (--cache-to)' });
  }
}

// The results an envelope offers, by cache key. `what` names it in errors.
export async function readEnvelope(top: Descriptor, bytes: Buffer, read: ReadBlob, what: string, depth = 0): Promise<Map<string, CachedResult>> {
  if (isIndexMediaType(top.mediaType)) {
    const index = parseJson<Index>(bytes, what);
    const entries = Array.isArray(index.manifests) ? index.manifests : [];
    const configDesc = entries.find((d) => d.mediaType === CACHE_CONFIG_MEDIA_TYPE);
    if (configDesc) return fromConfig(await read(configDesc), entries.filter((d) => d !== configDesc), what);
    // An image index: the inline caches of all its images (their keys hold their
    // platform, so they do not collide), attestation manifests left out.
    if (depth > 1) throw new ContentError(`${what}: an index nested more than twice`, { hint: 'check the cache reference' });
    const images = entries.filter((d) => (isManifestMediaType(d.mediaType) || isIndexMediaType(d.mediaType)) && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
    const out = new Map<string, CachedResult>();
    for (const d of images) {
      for (const [k, r] of await readEnvelope(d, await read(d), read, what, depth + 1)) {
        const prev = out.get(k);
        if (!prev || (r.created ?? '') > (prev.created ?? '')) out.set(k, r);
      }
    }
    return out;
  }
  const manifest = parseJson<Manifest>(bytes, what);
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new ContentError(`${what} is neither a cache manifest nor an image`, { hint: 'check the cache reference' });
  if (manifest.config.mediaType === CACHE_CONFIG_MEDIA_TYPE) return fromConfig(await read(manifest.config), manifest.layers, what);
  return fromInline(parseJson<ImageConfig & Record<string, unknown>>(await read(manifest.config), `${what} config`), manifest.layers, what);
}

function fromConfig(configBytes: Buffer, listed: Descriptor[], what: string): Map<string, CachedResult> {
  const config = parseConfig(parseJson(configBytes, `${what} cache config`), what);
  const byDigest = new Map(listed.map((d) => [d.digest, d]));
  const annotations = new Map(config.layers.map((l) => [l.blob, l.annotations]));
  return resultsByKey(config, (d) => {
    const desc = byDigest.get(d);
    return desc ? blobOf(desc, annotations.get(d)) : undefined;
  }, what);
}

// BuildKit's inline cache: the records alone (a Go []byte, so base64 in JSON), their
// "layer" indexes counting the image's layers bottom-up, each layer's parent the one below.
function fromInline(config: ImageConfig & Record<string, unknown>, layers: Descriptor[], what: string): Map<string, CachedResult> {
  const field = config[INLINE_CACHE_FIELD];
  if (typeof field !== 'string') return new Map();
  const records = parseRecords(parseJson(Buffer.from(field, 'base64'), `${what} inline cache`), layers.length, what);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) throw new ContentError(`${what}: its config lists ${diffIds.length} diff IDs for ${layers.length} layers`, { hint: 'the image is malformed' });
  const byDigest = new Map(layers.map((d, i) => [d.digest, { digest: d.digest, diffId: diffIds[i], mediaType: d.mediaType, size: d.size } as LayerBlob]));
  const cfg: CacheConfig = { layers: layers.map((d, i) => ({ blob: d.digest, parent: i - 1 })), records };
  return resultsByKey(cfg, (d) => byDigest.get(d), what);
}
