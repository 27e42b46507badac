// The image exporter: turns a build result (a chain of layer slots and the
// frontend's config) into an OCI image in the content store — layer blobs
// (base layers reused as pulled, build layers diffed from their snapshots,
// gzip, remembered in the layer memo), config (+ rootfs.diff_ids and aligned
// history) and manifest — and optionally names it in the image store. A
// multi-platform build's image is an index naming one such manifest per platform.
import { pipeline } from 'node:stream/promises';
import { createLayerBlob, decompressStream, mediaTypeFor, writeLayer, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, type Compression } from '../archive/index';
import { sha256Digest } from '../content/digest';
import { formatPlatform, normalizePlatform } from '../images/platform';
import { formatReference, parseReference } from '../images/reference';
import { ImageStore } from '../images/store';
import { MediaType, type BlobSource, type Descriptor, type Digest, type HistoryEntry, type ImageConfig, type Index, type LayerBlob, type Manifest, type Platform } from '../images/types';
import { ContentError, UnsupportedError } from '../util/errors';
import { Limiter } from '../util/limiter';
import type { BuildResult, BuildResults, ExportEnv, ExportProgress, ImageAnnotation, ImageFormat, LayerSlot } from './result';

// diffID of a tar with no entries (1024 zero bytes): the layer of a step that
// changed nothing (BuildKit keeps such layers, e.g. WORKDIR of an existing directory).
export const EMPTY_LAYER_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  configJson: ImageConfig;
  manifestJson: Manifest;
  // Layers named by the manifest but not in the content store yet (imported from
  // a remote cache): fetched by fetchLayers() for outputs that need the bytes,
  // mounted from their registry by a push.
  sources: Map<Digest, BlobSource>;
}

export interface ImageExportOptions {
  progress?: ExportProgress;
  concurrency?: number;
  format?: ImageFormat;
}

export function compressionOf(mediaType: string): Compression {
  if (/zstd/.test(mediaType)) return 'zstd';
  if (/gzip/.test(mediaType)) return 'gzip';
  return 'none';
}

// The layer media type under the manifest's media types: Docker schema2 has no
// zstd layer type, so such a layer cannot be written with oci-mediatypes=false.
export function layerMediaType(mediaType: string, oci: boolean): string {
  const c = compressionOf(mediaType);
  if (/foreign|nondistributable/.test(mediaType)) return mediaType;
  if (oci) return c === 'zstd' ? MediaType.OciLayerZstd : c === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer;
  if (c === 'zstd') {
    throw new UnsupportedError('a zstd layer cannot be written with Docker media types (oci-mediatypes=false)', {
      hint: 'drop oci-mediatypes=false, or use compression=gzip,force-compression=true',
    });
  }
  return c === 'gzip' ? MediaType.DockerLayerGzip : MediaType.DockerLayer;
}

// The layer memo's variant for a format: gzip at the default level is the
// plain entry (what every build made before variants existed).
function memoVariant(f: ImageFormat): string {
  const c = f.compression ?? 'gzip';
  const level = f.compressionLevel ?? (c === 'gzip' ? DEFAULT_GZIP_LEVEL : c === 'zstd' ? DEFAULT_ZSTD_LEVEL : 0);
  return c === 'gzip' && level === DEFAULT_GZIP_LEVEL ? '' : `${c}:${level}`;
}

// Blob for one layer slot: known, remembered from an earlier export, or made
// now. A known blob not stored here (a remote cache's) comes back with its
// source and is not fetched unless recompressing needs its bytes.
async function layerFor(env: ExportEnv, f: ImageFormat, slot: LayerSlot, i: number): Promise<{ blob: LayerBlob; source?: BlobSource }> {
  const want = f.compression ?? 'gzip';
  const variant = memoVariant(f);
  // A layer the build made: its blob in this format, remembered or made from the snapshot.
  if (slot.snapshot) {
    const blob = await env.layerBlobs.getOrMake(slot.snapshot, variant, () => layerFromSnapshot(env, slot.snapshot!, want, f.compressionLevel));
    if (blob) return { blob };
  }
  // A layer that has a blob (a base image's, a remote cache's, or one whose snapshot
  // was pruned): used as it is unless force-compression asks for another compression.
  if (slot.blob && (slot.source || (await env.content.has(slot.blob.digest)))) {
    if (f.forceCompression && compressionOf(slot.blob.mediaType) !== want) return { blob: await recompress(env, f, slot.blob, slot.source) };
    return (await env.content.has(slot.blob.digest)) ? { blob: slot.blob } : { blob: slot.blob, source: slot.source };
  }
  throw new ContentError(`layer ${i} has neither a stored blob nor a snapshot`, { hint: 'the build cache is damaged; run `img prune` and build again' });
}

// The diff of a committed snapshot as a blob; undefined when the snapshot is gone.
async function layerFromSnapshot(env: ExportEnv, snapshot: string, c: Compression, level: number | undefined): Promise<LayerBlob | undefined> {
  if (!(await env.sn.get(snapshot))) return undefined;
  const src = await env.sn.diffRoot(snapshot);
  try {
    const tar = writeLayer(env.sn.changes(snapshot), src.rootfs, { sourceDateEpoch: env.sourceDateEpoch, format: env.sn.diskFormat });
    return await ingestLayer(env, tar, c, level);
  } finally {
    await src.release();
  }
}

// A build layer's blob made now, while later steps still run: a committed snapshot's
// diff never changes, so the export at the end finds it made (the layer memo) instead
// of diffing, hashing and storing every layer after the last step. Slots without a
// snapshot (a base image's layers) have their blob already.
export async function prepareLayer(env: ExportEnv, format: ImageFormat, slot: LayerSlot): Promise<void> {
  if (slot.snapshot) await env.layerBlobs.getOrMake(slot.snapshot, memoVariant(format), () => layerFromSnapshot(env, slot.snapshot!, format.compression ?? 'gzip', format.compressionLevel));
}

async function ingestLayer(env: ExportEnv, tar: NodeJS.ReadableStream, c: Compression, level: number | undefined): Promise<LayerBlob> {
  const ing = env.content.ingest();
  let made: LayerBlob | undefined;
  try {
    // Uncompressed, the blob is the tar: the store's own hash of it is the diffID too
    // (hashing it here as well cost a second pass over every byte).
    if (c === 'none') await pipeline(tar as AsyncIterable<Uint8Array>, ing.stream);
    else made = await createLayerBlob(tar, c, ing.stream, { level });
  } catch (err) {
    await ing.abort();
    throw err;
  }
  const w = await ing.commit();
  return { digest: w.digest, diffId: made?.diffId ?? w.digest, mediaType: made?.mediaType ?? mediaTypeFor('none'), size: w.size };
}

// force-compression: a layer that already has a blob (a base image's) in
// another compression is decompressed and compressed again; same diffID.
async function recompress(env: ExportEnv, f: ImageFormat, blob: LayerBlob, source: BlobSource | undefined): Promise<LayerBlob> {
  const variant = memoVariant(f);
  const memoKey = `blob:${blob.digest}`;
  const known = await env.layerBlobs.get(memoKey, variant);
  if (known) return known;
  if (!(await env.content.has(blob.digest))) {
    if (!source) throw env.content.missing(blob.digest);
    await source.fetch({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size });
  }
  const raw = env.content.createReadStream(blob.digest);
  const plain = decompressStream(compressionOf(blob.mediaType));
  raw.on('error', (err) => plain.destroy(err));
  raw.pipe(plain);
  const made = await ingestLayer(env, plain, f.compression ?? 'gzip', f.compressionLevel);
  if (made.diffId !== blob.diffId) {
    throw new ContentError(`layer ${blob.digest} decompresses to ${made.diffId}, but its image says ${blob.diffId}`, {
      hint: 'the stored blob is corrupt; remove the base image (img rm) and pull it again',
    });
  }
  await env.layerBlobs.put(memoKey, made, variant);
  return made;
}

// BuildKit's normalization: one non-empty history entry per layer. Missing
// entries (base images without history) are prepended; surplus non-empty
// entries become empty_layer. A build step that changed nothing keeps its
// empty layer and a non-empty entry: BuildKit 0.8's exporter dropped such
// layers, current ones (0.11 on) keep them (WORKDIR of an existing directory).
export function alignHistory(history: HistoryEntry[] | undefined, layerCount: number, created: string | undefined): HistoryEntry[] {
  const hist = (history ?? []).map((h) => ({ ...h }));
  const nonEmpty = hist.filter((h) => !h.empty_layer).length;
  if (nonEmpty < layerCount) {
    const missing = layerCount - nonEmpty;
    hist.unshift(...Array.from({ length: missing }, () => ({ created, created_by: '', comment: 'missing history entry for a layer' }) as HistoryEntry));
  } else if (nonEmpty > layerCount) {
    let extra = nonEmpty - layerCount;
    for (const h of hist) {
      if (extra === 0) break;
      if (!h.empty_layer) {
        h.empty_layer = true;
        extra--;
      }
    }
  }
  for (const h of hist) {
    if (!h.empty_layer) delete h.empty_layer;
    if (h.created === undefined && created !== undefined) h.created = created; // BuildKit dates every entry
  }
  return hist;
}

// BuildKit serialises these fields with image-spec's Go types, which omit them when
// empty: a cleared CMD/ENTRYPOINT (null or []) is no key at all, as in docker build's config.
const OMIT_EMPTY = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal'];
function omitEmpty(c: ImageConfig['config']): void {
  if (!c) return;
  const rec = c as Record<string, unknown>;
  for (const k of OMIT_EMPTY) {
    const v = rec[k];
    if (v === null || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0)) delete rec[k];
  }
}

// The blobs of a layer chain in `format` (made from snapshots where needed,
// remembered in the layer memo); a blob only known remotely comes with its source.
export function exportLayers(layers: LayerSlot[], env: ExportEnv, format: ImageFormat = {}, concurrency = 4): Promise<{ blob: LayerBlob; source?: BlobSource }[]> {
  const limiter = new Limiter(concurrency);
  return Promise.all(layers.map((slot, i) => limiter.run(() => layerFor(env, format, slot, i))));
}

export async function buildImage(result: BuildResult, env: ExportEnv, o: ImageExportOptions = {}): Promise<BuiltImage> {
  const f = o.format ?? {};
  const oci = f.ociMediaTypes ?? true;
  o.progress?.status('layers', { name: 'exporting layers' });
  const made = await exportLayers(result.layers, env, f, o.concurrency);
  o.progress?.status('layers', { name: 'exporting layers', done: true });
  const sources = new Map<Digest, BlobSource>();
  for (const m of made) if (m.source) sources.set(m.blob.digest, m.source);

  const created =
    env.sourceDateEpoch !== undefined
      ? new Date(env.sourceDateEpoch * 1000).toISOString()
      : (result.created ?? result.config.created ?? new Date().toISOString());
  const history = alignHistory(result.config.history, made.length, created);
  const config: ImageConfig = {
    ...structuredClone(result.config),
    created,
    rootfs: { type: 'layers', diff_ids: made.map((l) => l.blob.diffId) },
    history,
  };
  omitEmpty(config.config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const manifestType = oci ? MediaType.OciManifest : MediaType.DockerManifest;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: configDesc,
    layers: made.map(({ blob }) => ({ mediaType: layerMediaType(blob.mediaType, oci), digest: blob.digest, size: blob.size })),
  };
  // imageTargetOf left only this platform's manifest annotations, without their platform.
  const annotations = annotationRecord(f.annotations, 'manifest');
  if (annotations) manifest.annotations = annotations;
  // Both blobs at once (each waits for two fsyncs): the manifest names the config by
  // its digest, and nothing names the manifest until both are stored.
  const [, mw] = await Promise.all([
    env.content.writeBytes(configBytes, { digest: configDesc.digest, size: configDesc.size }),
    env.content.writeBytes(Buffer.from(JSON.stringify(manifest))),
  ]);
  o.progress?.status('config', { name: `exporting config ${configDesc.digest}`, done: true });
  const manifestDesc: Descriptor = { mediaType: manifestType, digest: mw.digest, size: mw.size };
  o.progress?.status('manifest', { name: `exporting manifest ${mw.digest}`, done: true });
  return { manifest: manifestDesc, config: configDesc, configJson: config, manifestJson: manifest, sources };
}

// Fetches the layers of an image that are not in the content store yet (see
// BuiltImage.sources), for outputs that store or write the image's bytes.
export async function fetchLayers(built: BuiltImage, env: ExportEnv, progress?: ExportProgress): Promise<void> {
  const missing = built.manifestJson.layers.filter((l) => built.sources.has(l.digest));
  const limiter = new Limiter(4);
  await Promise.all(
    missing.map((l) =>
      limiter.run(async () => {
        if (await env.content.has(l.digest)) return;
        progress?.status(`fetch-${l.digest}`, { name: `fetching cached layer ${l.digest}` });
        await built.sources.get(l.digest)!.fetch(l);
        progress?.status(`fetch-${l.digest}`, { name: `fetching cached layer ${l.digest}`, done: true });
      }),
    ),
  );
}

// The image of a build result in one format, made once however many outputs
// (image, docker, oci, --iidfile) ask for it; its progress shows under the first that asks.
const images = new WeakMap<BuildResult, Map<string, Promise<BuiltImage>>>();
export function imageOf(result: BuildResult, env: ExportEnv, progress?: ExportProgress, format: ImageFormat = {}): Promise<BuiltImage> {
  let byFormat = images.get(result);
  if (!byFormat) images.set(result, (byFormat = new Map()));
  const key = JSON.stringify([format.compression ?? 'gzip', format.compressionLevel ?? null, Boolean(format.forceCompression), format.ociMediaTypes ?? true, format.annotations ?? []]);
  let p = byFormat.get(key);
  if (!p) {
    p = buildImage(result, env, { progress, format });
    byFormat.set(key, p);
    p.catch(() => byFormat.delete(key));
  }
  return p;
}

export interface BuiltTarget {
  // What names point at: the one manifest, or the index of a multi-platform build.
  target: Descriptor;
  // Each platform's image, in the order of the build's platforms.
  images: BuiltImage[];
  // Every image's layers not stored yet (see BuiltImage.sources).
  sources: Map<Digest, BlobSource>;
}

// The image of a build's results in one format, made once for all outputs: one
// platform's manifest, or an index of every platform's manifest (a Docker
// manifest list with oci-mediatypes=false), each entry carrying its platform:
// the target's normal form plus the config's os.version.
const targets = new WeakMap<BuildResults, Map<string, Promise<BuiltTarget>>>();
export function imageTargetOf(results: BuildResults, env: ExportEnv, progress?: ExportProgress, format: ImageFormat = {}): Promise<BuiltTarget> {
  let byFormat = targets.get(results);
  if (!byFormat) targets.set(results, (byFormat = new Map()));
  const key = JSON.stringify(format);
  let p = byFormat.get(key);
  if (!p) {
    p = (async () => {
      // Each platform's rows apart (their layers, configs and manifests differ).
      const under = (i: number): ExportProgress | undefined =>
        progress && results.multiPlatform ? { status: (sub, s) => progress.status(`${i}-${sub}`, s) } : progress;
      const all = format.annotations ?? [];
      checkAnnotations(all, results.multiPlatform);
      // Each platform's image gets the manifest annotations meant for it (no platform: all).
      const forPlatform = (type: ImageAnnotation['type'], p: Platform) =>
        all.filter((a) => a.type === type && (!a.platform || a.platform === formatPlatform(normalizePlatform(p)))).map(({ platform: _p, ...a }) => a);
      const images = await Promise.all(
        results.platforms.map((r, i) => imageOf(r.result, env, under(i), { ...format, annotations: forPlatform('manifest', r.platform) })),
      );
      const sources = new Map(images.flatMap((img) => [...img.sources]));
      // BuildKit's manifest-descriptor (one platform) or index-descriptor annotations
      // annotate the top descriptor: an archive's index.json entry, the image record's target.
      if (!results.multiPlatform) {
        const top = annotationRecord(forPlatform('manifest-descriptor', results.platforms[0].platform), 'manifest-descriptor');
        return { target: top ? { ...images[0].manifest, annotations: top } : images[0].manifest, images, sources };
      }
      const mediaType = format.ociMediaTypes === false ? MediaType.DockerManifestList : MediaType.OciIndex;
      const index: Index = {
        schemaVersion: 2,
        mediaType,
        manifests: images.map((img, i) => {
          const d: Descriptor = { ...img.manifest, platform: descriptorPlatform(results.platforms[i].platform, img.configJson) };
          const ann = annotationRecord(forPlatform('manifest-descriptor', results.platforms[i].platform), 'manifest-descriptor');
          return ann ? { ...d, annotations: ann } : d;
        }),
      };
      const indexAnn = annotationRecord(all, 'index');
      if (indexAnn) index.annotations = indexAnn;
      const w = await env.content.writeBytes(Buffer.from(JSON.stringify(index)));
      progress?.status('index', { name: `exporting manifest list ${w.digest}`, done: true });
      const top = annotationRecord(all, 'index-descriptor');
      return { target: { mediaType, digest: w.digest, size: w.size, ...(top ? { annotations: top } : {}) }, images, sources };
    })();
    byFormat.set(key, p);
    p.catch(() => byFormat.delete(key));
  }
  return p;
}

// The annotations of one type as a manifest or descriptor carries them (undefined: none).
function annotationRecord(list: ImageAnnotation[] | undefined, type: ImageAnnotation['type']): Record<string, string> | undefined {
  const chosen = (list ?? []).filter((a) => a.type === type);
  return chosen.length ? Object.fromEntries(chosen.map((a) => [a.key, a.value])) : undefined;
}

// What an image can carry: index annotations need an index (BuildKit's error for a
// single platform).
function checkAnnotations(all: ImageAnnotation[], multiPlatform: boolean): void {
  if (!multiPlatform && all.some((a) => a.type === 'index' || a.type === 'index-descriptor')) {
    throw new UnsupportedError('index annotations not supported for single platform export', {
      hint: 'use manifest annotations (--annotation KEY=VALUE), or build several --platform values to get an index',
    });
  }
}

function descriptorPlatform(target: Platform, config: ImageConfig): Platform {
  const p = normalizePlatform(target);
  if (config['os.version']) p['os.version'] = config['os.version'];
  return p;
}

// `-o type=image` (the default output): the image (or index), named in the image store.
// Returns the full names it got ("docker.io/library/x:latest").
export async function exportImage(results: BuildResults, env: ExportEnv, names: string[], progress?: ExportProgress, format?: ImageFormat): Promise<string[]> {
  const built = await imageTargetOf(results, env, progress, format);
  for (const img of built.images) await fetchLayers(img, env, progress);
  return nameImage(new ImageStore(env.stateDir), names, built.target, progress);
}

export async function nameImage(store: ImageStore, names: string[], target: Descriptor, progress?: ExportProgress): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    const ref = parseReference(n);
    const full = formatReference(ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' });
    progress?.status(`name-${full}`, { name: `naming to ${full}` });
    await store.put(full, target);
    progress?.status(`name-${full}`, { name: `naming to ${full}`, done: true });
    out.push(full);
  }
  return out;
}
