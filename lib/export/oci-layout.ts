// OCI image layout as a tar stream (`img save --format oci`, `build -o type=oci`):
//   blobs/, blobs/sha256/, blobs/sha256/<hex>…, index.json, oci-layout
// index.json names each image with `org.opencontainers.image.ref.name` (the tag,
// as containerd and docker write it) and `io.containerd.image.name` (the full name);
// a build's archive also dates its entries (`org.opencontainers.image.created`), as
// BuildKit's oci/docker exporters do. The entries are in name order with
// containerd's archive modes (blobs and oci-layout 0444, the JSON files 0644),
// as containerd's archive exporter (BuildKit's) and docker ≥ 25's save write them.
import type { Writable } from 'node:stream';
import type { ContentStore } from '../content/store';
import { ImgError } from '../util/errors';
import { parseReference, formatReference, familiarName } from '../images/reference';
import { MediaType, isIndexMediaType, type Descriptor, type Digest, type Index } from '../images/types';
import { localManifests, walk } from '../images/walk';
import { TarWriter } from './tar';

export interface ExportImage {
  // Normalized or user-typed reference ("busybox", "docker.io/library/busybox:latest");
  // omit for an unnamed image (build output without -t).
  name?: string;
  target: Descriptor; // manifest or index in the content store
}

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';

// What the archives add to index.json: `created` only for a build's output.
export interface ArchiveOptions {
  created?: string; // RFC 3339, seconds, UTC (Go's time.RFC3339)
}

// A build's archive date as BuildKit writes it: SOURCE_DATE_EPOCH, else now.
export function archiveCreated(sourceDateEpoch: number | undefined): string {
  const ms = sourceDateEpoch !== undefined ? sourceDateEpoch * 1000 : Date.now();
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

// Keys in sorted order, as Go marshals a map (the bytes match containerd's index.json).
export function nameAnnotations(name: string | undefined, opts: ArchiveOptions = {}): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (opts.created) out[ANNOTATION_CREATED] = opts.created;
  if (name) {
    const ref = parseReference(name);
    out[ANNOTATION_IMAGE_NAME] = formatReference(ref);
    if (ref.tag) out[ANNOTATION_REF_NAME] = ref.tag;
  }
  const keys = Object.keys(out).sort();
  return keys.length ? Object.fromEntries(keys.map((k) => [k, out[k]])) : undefined;
}

function describe(img: ExportImage): string {
  return img.name ? familiarName(parseReference(img.name)) : img.target.digest;
}

// Descriptors (with their media types) reachable from `roots`, all of which must be present.
export async function requireBlobs(store: ContentStore, roots: Descriptor[], what: string): Promise<Descriptor[]> {
  const missing: Digest[] = [];
  const all = await walk(store, roots, (d, present) => {
    if (!present) missing.push(d.digest);
  });
  if (missing.length) {
    throw new ImgError(`image ${what} is incomplete: ${missing.length} blob(s) missing locally, first ${missing[0]}`, {
      hint: 'pull or build the image again',
    });
  }
  return [...all.values()];
}

// Every blob below `target` is stored (a pulled index usually holds one platform).
export async function completeLocally(store: ContentStore, target: Descriptor): Promise<boolean> {
  let complete = true;
  await walk(store, [target], (_d, present) => {
    if (!present) complete = false;
  });
  return complete;
}

// Both sets, keys sorted as Go marshals a map (undefined: none).
export function mergeAnnotations(a: Record<string, string> | undefined, b: Record<string, string> | undefined): Record<string, string> | undefined {
  const all: Record<string, string> = { ...a, ...b };
  const keys = Object.keys(all).sort();
  return keys.length ? Object.fromEntries(keys.map((k) => [k, all[k]])) : undefined;
}

// An index.json entry: `d` with `annotations` in place of its own, fields in the
// order Go's ocispec.Descriptor marshals them (annotations before platform).
export function indexEntry(d: Descriptor, annotations: Record<string, string> | undefined): Descriptor {
  const { mediaType, digest, size, urls, annotations: _old, platform, ...rest } = d;
  return {
    mediaType,
    digest,
    size,
    ...(urls ? { urls } : {}),
    ...(annotations ? { annotations } : {}),
    ...rest,
    ...(platform ? { platform } : {}),
  };
}

// index.json entries for `images`: an index whose platforms are all present
// is kept as is; of a partially pulled index, its present manifests are named
// instead (an archive must not point at blobs it does not contain).
export async function ociEntries(store: ContentStore, images: ExportImage[], opts: ArchiveOptions = {}): Promise<Descriptor[]> {
  const entries: Descriptor[] = [];
  for (const img of images) {
    if (!(await store.has(img.target.digest))) throw store.missing(img.target.digest);
    let targets: Descriptor[] = [img.target];
    if (isIndexMediaType(img.target.mediaType)) {
      if (!(await completeLocally(store, img.target))) targets = await localManifests(store, img.target);
      if (!targets.length) {
        throw new ImgError(`image ${describe(img)} has no platform manifest stored locally`, { hint: 'pull it again' });
      }
    }
    // The descriptor's own annotations stay beside the names (containerd's WithManifest).
    // A created the descriptor has (a user's annotation) wins, as in BuildKit.
    for (const t of targets) {
      const names = nameAnnotations(img.name, t.annotations?.[ANNOTATION_CREATED] ? {} : opts);
      entries.push(indexEntry(t, mergeAnnotations(t.annotations, names)));
    }
  }
  return entries;
}

export const blobPath = (d: Digest) => `blobs/sha256/${d.slice(7)}`;

// Writes `files` (oci-layout 0444, the JSON files 0644) and the blobs (once each,
// 0444) in name order, as containerd's archive exporter sorts its records: the
// directories blobs/ and blobs/sha256/ first, then the blobs, then index.json,
// manifest.json, oci-layout, repositories.
export async function writeLayout(tar: TarWriter, store: ContentStore, files: [string, string][], blobs: Descriptor[]): Promise<void> {
  const records: { name: string; body?: string; blob?: Descriptor }[] = files.map(([name, body]) => ({ name, body }));
  const seen = new Set<Digest>();
  for (const d of blobs) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    records.push({ name: blobPath(d.digest), blob: d });
  }
  records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const r of records) {
    if (r.body !== undefined) {
      await tar.addBuffer(r.name, r.body, r.name === 'oci-layout' ? 0o444 : 0o644);
      continue;
    }
    const st = await store.stat(r.blob!.digest);
    if (!st) throw store.missing(r.blob!.digest);
    await tar.addStream(r.name, st.size, store.createReadStream(r.blob!.digest), 0o444);
  }
}

export function ociLayoutFiles(entries: Descriptor[]): [string, string][] {
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries };
  return [
    ['oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' })],
    ['index.json', JSON.stringify(index)],
  ];
}

export async function writeOciArchive(store: ContentStore, images: ExportImage[], out: Writable, opts: ArchiveOptions = {}): Promise<void> {
  const tar = new TarWriter(out);
  try {
    const entries = await ociEntries(store, images, opts);
    const blobs = await requireBlobs(store, entries, images.map(describe).join(', '));
    await writeLayout(tar, store, ociLayoutFiles(entries), blobs);
  } catch (err) {
    tar.abort(err as Error);
    throw err;
  }
  await tar.finish();
}
