// Walking an image's content graph: index → manifests → config + layers.
// Tolerant of blobs that are not present locally: a pull of one platform of a
// multi-platform index stores the index but only one of its manifests.
import type { ContentStore } from '../content/store';
import { isDigest } from '../content/digest';
import { ContentError } from '../util/errors';
import { isIndexMediaType, isManifestMediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from './types';

// Media type of a JSON blob when the descriptor lacks one: sniff the document.
function kindOf(desc: Descriptor, doc: { mediaType?: string; manifests?: unknown; config?: unknown }): 'index' | 'manifest' | 'other' {
  if (isIndexMediaType(desc.mediaType) || isIndexMediaType(doc.mediaType)) return 'index';
  if (isManifestMediaType(desc.mediaType) || isManifestMediaType(doc.mediaType)) return 'manifest';
  if (Array.isArray(doc.manifests)) return 'index';
  if (doc.config && typeof doc.config === 'object') return 'manifest';
  return 'other';
}

function mayHaveChildren(desc: Descriptor): boolean {
  return (
    isIndexMediaType(desc.mediaType) ||
    isManifestMediaType(desc.mediaType) ||
    desc.mediaType === undefined ||
    desc.mediaType === '' ||
    desc.mediaType === 'application/json'
  );
}

const MAX_SNIFF = 4 << 20;

// Direct children of a descriptor; [] for leaves and for blobs not present locally.
// `strict`: a present blob declared as an index/manifest that does not parse is
// an error instead of a leaf (GC must not sweep what a corrupt manifest hides).
export async function children(store: ContentStore, desc: Descriptor, opts: { strict?: boolean } = {}): Promise<Descriptor[]> {
  if (!mayHaveChildren(desc) || !isDigest(desc.digest)) return [];
  const st = await store.stat(desc.digest);
  if (!st) return [];
  // Unknown media type (a bare digest root): only small blobs can be manifests.
  if (!isIndexMediaType(desc.mediaType) && !isManifestMediaType(desc.mediaType) && st.size > MAX_SNIFF) return [];
  let doc: Index & Manifest;
  const declared = isIndexMediaType(desc.mediaType) || isManifestMediaType(desc.mediaType);
  try {
    doc = await store.readJson<Index & Manifest>(desc.digest);
  } catch (err) {
    if (opts.strict && declared && (await store.has(desc.digest))) throw err;
    return [];
  }
  let kids: Descriptor[];
  switch (kindOf(desc, doc)) {
    case 'index':
      kids = Array.isArray(doc.manifests) ? doc.manifests : [];
      break;
    case 'manifest':
      kids = [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])];
      break;
    default:
      if (opts.strict && declared) {
        throw new ContentError(`blob ${desc.digest} is not a valid ${desc.mediaType}`, { hint: 'remove the image naming it (img rm) and pull or build it again' });
      }
      return [];
  }
  // Only sha256 descriptors can be in this store; others are treated as absent.
  return kids.filter((d) => d && typeof d.digest === 'string' && isDigest(d.digest));
}

// Every descriptor reachable from the roots (roots included), each once.
// `present` is whether the blob exists in the store.
export async function walk(
  store: ContentStore,
  roots: Descriptor[],
  visit?: (desc: Descriptor, present: boolean) => void | Promise<void>,
  opts: { strict?: boolean } = {},
): Promise<Map<Digest, Descriptor>> {
  const seen = new Map<Digest, Descriptor>();
  const queue = roots.filter((d) => isDigest(d.digest));
  while (queue.length) {
    const batch = queue.splice(0, queue.length).filter((d) => {
      if (seen.has(d.digest)) return false;
      seen.set(d.digest, d);
      return true;
    });
    const kids = await Promise.all(
      batch.map(async (d) => {
        if (visit) await visit(d, await store.has(d.digest));
        return children(store, d, opts);
      }),
    );
    for (const k of kids) queue.push(...k);
  }
  return seen;
}

// Sum of sizes of the locally present blobs of an image (index + present
// manifests + their configs and layers), which is what `img ls` shows.
export async function imageSize(store: ContentStore, target: Descriptor): Promise<number> {
  let total = 0;
  await walk(store, [target], (d, present) => {
    if (present) total += d.size;
  });
  return total;
}

// The manifests an index (or a manifest itself) resolves to locally: each
// present manifest with the descriptor that named it (carrying its platform).
export async function localManifests(store: ContentStore, target: Descriptor): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<Digest>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest) || !(await store.has(d.digest))) return;
    seen.add(d.digest);
    if (isManifestMediaType(d.mediaType)) {
      out.push(d);
      return;
    }
    if (isIndexMediaType(d.mediaType)) {
      for (const c of await children(store, d)) await visit(c);
      return;
    }
    const doc = await store.readJson<Index & Manifest>(d.digest).catch(() => null);
    if (!doc) return;
    const kind = kindOf(d, doc);
    if (kind === 'manifest') out.push({ ...d, mediaType: doc.mediaType ?? d.mediaType });
    else if (kind === 'index') for (const c of doc.manifests ?? []) await visit(c);
  };
  await visit(target);
  return out;
}

// The descriptors with a platform each: a manifest reached without one (a bare
// manifest, or an index entry that omits it) takes its config's os/architecture/variant.
export function withConfigPlatforms(store: ContentStore, manifests: Descriptor[]): Promise<Descriptor[]> {
  return Promise.all(
    manifests.map(async (d) => {
      if (d.platform) return d;
      const m = await store.readJson<Manifest>(d.digest);
      const c = await store.readJson<ImageConfig>(m.config.digest);
      return { ...d, platform: { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) } };
    }),
  );
}

/**
 * What is wrong with a descriptor read from a manifest or index someone else wrote (a
 * registry, an archive), or undefined when it is usable: an object with a string
 * mediaType, a sha256 digest (the only algorithm the content store holds) and a size.
 */
export function descriptorProblem(d: unknown): string | undefined {
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return `is ${d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d}, not a descriptor`;
  const { mediaType, digest, size } = d as Record<string, unknown>;
  if (typeof mediaType !== 'string' || mediaType === '') return 'has no mediaType';
  if (typeof digest !== 'string') return 'has no digest';
  if (!isDigest(digest)) {
    const shown = JSON.stringify(digest.length > 80 ? digest.slice(0, 80) + '…' : digest);
    return /^[a-z0-9]+([+._-][a-z0-9]+)*:/.test(digest) && !digest.startsWith('sha256:') ? `has digest ${shown}, of an algorithm img does not support (only sha256)` : `has an invalid digest ${shown}`;
  }
  if (size === undefined) return 'has no size';
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return `has an invalid size ${JSON.stringify(size)}`;
  return undefined;
}
