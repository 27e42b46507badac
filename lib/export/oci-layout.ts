// OCI image layout as a tar stream (`img save --format oci`, `build -o type=oci`):
//   oci-layout, index.json, blobs/sha256/<hex>
// index.json names each image with `org.opencontainers.image.ref.name` (the tag,
// as containerd and docker write it) and `io.containerd.image.name` (the full name).
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

export function nameAnnotations(name: string | undefined): Record<string, string> | undefined {
  if (!name) return undefined;
  const ref = parseReference(name);
  const out: Record<string, string> = { [ANNOTATION_IMAGE_NAME]: formatReference(ref) };
  if (ref.tag) out[ANNOTATION_REF_NAME] = ref.tag;
  return out;
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

// index.json entries for `images`: an index whose platforms are all present
// is kept as is; of a partially pulled index, its present manifests are named
// instead (an archive must not point at blobs it does not contain).
export async function ociEntries(store: ContentStore, images: ExportImage[]): Promise<Descriptor[]> {
  const entries: Descriptor[] = [];
  for (const img of images) {
    const annotations = nameAnnotations(img.name);
    if (!(await store.has(img.target.digest))) throw store.missing(img.target.digest);
    let targets: Descriptor[] = [img.target];
    if (isIndexMediaType(img.target.mediaType)) {
      if (!(await completeLocally(store, img.target))) targets = await localManifests(store, img.target);
      if (!targets.length) {
        throw new ImgError(`image ${describe(img)} has no platform manifest stored locally`, { hint: 'pull it again' });
      }
    }
    for (const t of targets) {
      const { annotations: _old, ...rest } = t;
      entries.push(annotations ? { ...rest, annotations } : rest);
    }
  }
  return entries;
}

// Writes the blobs (deduplicated; small JSON first, layers last) under blobs/sha256/.
export async function writeBlobs(tar: TarWriter, store: ContentStore, blobs: Descriptor[]): Promise<void> {
  const seen = new Set<Digest>();
  const isSmall = (d: Descriptor) => d.size < 1 << 20 && !/layer|rootfs/.test(d.mediaType ?? '');
  const ordered = [...blobs.filter(isSmall), ...blobs.filter((d) => !isSmall(d))];
  for (const d of ordered) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    const st = await store.stat(d.digest);
    if (!st) throw store.missing(d.digest);
    await tar.addStream(`blobs/sha256/${d.digest.slice(7)}`, st.size, store.createReadStream(d.digest));
  }
}

export function ociLayoutFiles(entries: Descriptor[]): [string, string][] {
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries };
  return [
    ['oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' })],
    ['index.json', JSON.stringify(index)],
  ];
}

export async function writeOciArchive(store: ContentStore, images: ExportImage[], out: Writable): Promise<void> {
  const tar = new TarWriter(out);
  try {
    const entries = await ociEntries(store, images);
    const blobs = await requireBlobs(store, entries, images.map(describe).join(', '));
    for (const [name, body] of ociLayoutFiles(entries)) await tar.addBuffer(name, body);
    await writeBlobs(tar, store, blobs);
  } catch (err) {
    tar.abort(err as Error);
    throw err;
  }
  await tar.finish();
}
