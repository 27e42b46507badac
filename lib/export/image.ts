// The image exporter: turns a build result (a chain of layer slots and the
// frontend's config) into an OCI image in the content store — layer blobs
// (base layers reused as pulled, build layers diffed from their snapshots,
// gzip, remembered in the layer memo), config (+ rootfs.diff_ids and aligned
// history) and manifest — and optionally names it in the image store.
import { createLayerBlob, writeLayer } from '../archive/index';
import { formatReference, parseReference } from '../images/reference';
import { ImageStore } from '../images/store';
import { MediaType, type Descriptor, type Digest, type HistoryEntry, type ImageConfig, type LayerBlob, type Manifest } from '../images/types';
import { Limiter } from '../util/limiter';
import type { BuildResult, ExportEnv, ExportProgress, LayerSlot } from './result';

// diffID of a tar with no entries (1024 zero bytes): the layer of a step that
// changed nothing (BuildKit keeps such layers, e.g. WORKDIR of an existing directory).
export const EMPTY_LAYER_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  configJson: ImageConfig;
  manifestJson: Manifest;
}

export interface ImageExportOptions {
  progress?: ExportProgress;
  concurrency?: number;
  compression?: 'gzip' | 'zstd' | 'none';
}

// Blob for one layer slot: known, remembered from an earlier export, or made now.
async function layerFor(env: ExportEnv, o: ImageExportOptions, slot: LayerSlot, i: number): Promise<LayerBlob> {
  if (slot.blob && (await env.content.has(slot.blob.digest))) return slot.blob;
  if (!slot.snapshot) {
    throw new Error(`layer ${i} has neither a stored blob nor a snapshot`);
  }
  const known = await env.layerBlobs.get(slot.snapshot);
  if (known) return known;
  const src = await env.sn.diffRoot(slot.snapshot);
  let blob: LayerBlob;
  try {
    const tar = writeLayer(env.sn.changes(slot.snapshot), src.rootfs, { sourceDateEpoch: env.sourceDateEpoch });
    const ing = env.content.ingest();
    let made;
    try {
      made = await createLayerBlob(tar, o.compression ?? 'gzip', ing.stream);
    } catch (err) {
      await ing.abort();
      throw err;
    }
    const w = await ing.commit();
    blob = { digest: w.digest, diffId: made.diffId, mediaType: made.mediaType, size: w.size };
  } finally {
    await src.release();
  }
  await env.layerBlobs.put(slot.snapshot, blob);
  return blob;
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

export async function buildImage(result: BuildResult, env: ExportEnv, o: ImageExportOptions = {}): Promise<BuiltImage> {
  const limiter = new Limiter(o.concurrency ?? 4);
  o.progress?.status('layers', { name: 'exporting layers' });
  const made = await Promise.all(result.layers.map((slot, i) => limiter.run(() => layerFor(env, o, slot, i))));
  o.progress?.status('layers', { name: 'exporting layers', done: true });

  const created =
    env.sourceDateEpoch !== undefined
      ? new Date(env.sourceDateEpoch * 1000).toISOString()
      : (result.created ?? result.config.created ?? new Date().toISOString());
  const history = alignHistory(result.config.history, made.length, created);
  const config: ImageConfig = {
    ...structuredClone(result.config),
    created,
    rootfs: { type: 'layers', diff_ids: made.map((l) => l.diffId) },
    history,
  };
  omitEmpty(config.config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const cw = await env.content.writeBytes(configBytes);
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: cw.digest, size: cw.size };
  o.progress?.status('config', { name: `exporting config ${cw.digest}`, done: true });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: made.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const mw = await env.content.writeBytes(Buffer.from(JSON.stringify(manifest)));
  const manifestDesc: Descriptor = { mediaType: MediaType.OciManifest, digest: mw.digest, size: mw.size };
  o.progress?.status('manifest', { name: `exporting manifest ${mw.digest}`, done: true });
  return { manifest: manifestDesc, config: configDesc, configJson: config, manifestJson: manifest };
}

// The image of a build result, made once however many outputs (image, docker,
// oci, --iidfile) ask for it; its progress shows under the first that asks.
const images = new WeakMap<BuildResult, Promise<BuiltImage>>();
export function imageOf(result: BuildResult, env: ExportEnv, progress?: ExportProgress): Promise<BuiltImage> {
  let p = images.get(result);
  if (!p) {
    p = buildImage(result, env, { progress });
    images.set(result, p);
    p.catch(() => images.delete(result));
  }
  return p;
}

// `-o type=image` (the default output): the image, named in the image store.
// Returns the full names it got ("docker.io/library/x:latest").
export async function exportImage(result: BuildResult, env: ExportEnv, names: string[], progress?: ExportProgress): Promise<string[]> {
  const built = await imageOf(result, env, progress);
  return nameImage(new ImageStore(env.stateDir), names, built.manifest, progress);
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
