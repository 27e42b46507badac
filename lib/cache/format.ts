// BuildKit's distributable cache format (cache/remotecache/v1 in moby/buildkit),
// written and read as BuildKit does, so buildx can import what img exports and
// img what BuildKit exports (results are found where the cache keys agree).
//
// The config, media type application/vnd.buildkit.cacheconfig.v0:
//   { "layers":  [ { "blob": "sha256:…", "parent": -1 } , … ],     layer chains: each
//                                                                   layer names its parent
//     "records": [ { "digest": "sha256:…",                          a cache key
//                    "inputs": [ [ { "link": 3 } ], … ],            per input, the records it
//                                                                   may come from
//                    "layers": [ { "layer": 5, "createdAt": "…" } ] results: top of a chain
//                    "chains": [ { "layers": [0, 4], … } ] } ] }    results as explicit lists
// Go's encoding/json shapes the bytes: "parent" is `omitempty`, so a layer whose
// parent is layer 0 has no "parent" key (and a root says -1); createdAt is a
// time.Time, always written (zero: 0001-01-01T00:00:00Z).
//
// It travels in one of three envelopes (see registry.ts, local.ts, inline.ts): an
// index (OCI index or Docker manifest list) listing the layer blobs and the config,
// an OCI image manifest whose config is the cache config (image-manifest=true,
// BuildKit's default since v0.21), or an image config's "moby.buildkit.cache.v0"
// field holding the records alone, their "layer" indexes counting the image's layers.
// Layer descriptors carry the diffID as annotation "containerd.io/uncompressed"
// (BuildKit's importer requires it) and "buildkit/createdat".
import type { Descriptor, Digest, LayerBlob } from '../images/types';
import { ContentError } from '../util/errors';

export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.buildkit.cacheconfig.v0';
export const INLINE_CACHE_FIELD = 'moby.buildkit.cache.v0';
export const ANNOTATION_UNCOMPRESSED = 'containerd.io/uncompressed';
export const ANNOTATION_CREATED_AT = 'buildkit/createdat';
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface CacheLayer {
  blob: Digest;
  parent: number; // -1: none
  annotations?: { mediaType?: string; diffID?: Digest; size?: number; createdAt?: string };
}

export interface CacheRecord {
  digest: string;
  inputs: { selector?: string; link: number }[][];
  results: { layer: number; createdAt: string }[];
  chains: { layers: number[]; createdAt: string }[];
}

export interface CacheConfig {
  layers: CacheLayer[];
  records: CacheRecord[];
}

// One vertex's entry for export: its key, its inputs' keys, and its result's
// layer chain (bottom to top) when it is exported.
export interface ExportEntry {
  key: string;
  inputs: string[];
  result?: { layers: LayerBlob[]; created?: string };
}

// A result found in an imported config: the chain of layer descriptors (with
// their diffIDs) and when it was made.
export interface CachedResult {
  layers: LayerBlob[];
  created?: string;
}

// Go's time.Time MarshalJSON (RFC 3339 with nanoseconds, trailing zeros trimmed).
export function goTime(iso: string | undefined): string {
  if (!iso) return ZERO_TIME;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return ZERO_TIME;
  return d.toISOString().replace(/\.(\d*?)0+Z$/, (_m, f: string) => (f ? `.${f}Z` : 'Z'));
}

// The config for `entries`: one layer per distinct chain position, one record
// per distinct key, deterministic order (layers parents-first by depth and blob,
// records by digest), so equal caches serialize to equal bytes.
export function buildConfig(entries: ExportEntry[]): { config: CacheConfig; blobs: Map<Digest, LayerBlob> } {
  const blobs = new Map<Digest, LayerBlob>();
  const chainIds: string[] = []; // layer index → chain id (blob digests joined)
  const layerOf = new Map<string, number>();
  const rawLayers: { blob: Digest; parent: number; depth: number }[] = [];
  const addChain = (layers: LayerBlob[]): number => {
    let parent = -1;
    let id = '';
    layers.forEach((l, depth) => {
      blobs.set(l.digest, l);
      id = id ? `${id}>${l.digest}` : l.digest;
      let idx = layerOf.get(id);
      if (idx === undefined) {
        idx = rawLayers.length;
        rawLayers.push({ blob: l.digest, parent, depth });
        layerOf.set(id, idx);
        chainIds.push(id);
      }
      parent = idx;
    });
    return parent;
  };

  const byKey = new Map<string, ExportEntry>();
  for (const e of entries) {
    const prev = byKey.get(e.key);
    if (!prev || (!prev.result && e.result)) byKey.set(e.key, e);
  }
  const keys = [...byKey.keys()].sort();
  const recordIndex = new Map(keys.map((k, i) => [k, i]));
  const tops = new Map<string, number>();
  for (const k of keys) {
    const r = byKey.get(k)!.result;
    if (r && r.layers.length) tops.set(k, addChain(r.layers));
  }

  // Layers: parents before children, by depth then blob then parent's new index.
  const order = rawLayers.map((_, i) => i);
  const newIndex = new Array<number>(rawLayers.length);
  order.sort((a, b) => rawLayers[a].depth - rawLayers[b].depth || (chainIds[a] < chainIds[b] ? -1 : chainIds[a] > chainIds[b] ? 1 : 0));
  order.forEach((old, i) => (newIndex[old] = i));
  const layers: CacheLayer[] = order.map((old) => {
    const l = rawLayers[old];
    const b = blobs.get(l.blob)!;
    return { blob: l.blob, parent: l.parent === -1 ? -1 : newIndex[l.parent], annotations: { mediaType: b.mediaType, diffID: b.diffId, size: b.size } };
  });

  const records: CacheRecord[] = keys.map((k) => {
    const e = byKey.get(k)!;
    const links = e.inputs.map((ik) => recordIndex.get(ik));
    // BuildKit rejects an input with no link: without every input's record, none.
    const inputs = links.every((l) => l !== undefined) ? links.map((l) => [{ link: l! }]) : [];
    const top = tops.get(k);
    return { digest: k, inputs, results: top === undefined ? [] : [{ layer: newIndex[top], createdAt: goTime(e.result?.created) }], chains: [] };
  });
  return { config: { layers, records }, blobs };
}

// The config as Go's encoding/json writes it (field order, omitempty, "parent" 0 left out).
export function marshalConfig(c: CacheConfig, opts: { layerAnnotations?: boolean } = {}): string {
  const layers = c.layers.map((l) => {
    const o: Record<string, unknown> = { blob: l.blob };
    if (l.parent !== 0) o.parent = l.parent;
    if (opts.layerAnnotations && l.annotations) o.annotations = l.annotations;
    return o;
  });
  const out: Record<string, unknown> = {};
  if (layers.length) out.layers = layers;
  if (c.records.length) out.records = marshalRecords(c.records);
  return JSON.stringify(out);
}

export function marshalRecords(records: CacheRecord[]): Record<string, unknown>[] {
  return records.map((r) => {
    const o: Record<string, unknown> = {};
    if (r.results.length) o.layers = r.results.map((x) => ({ layer: x.layer, createdAt: x.createdAt }));
    if (r.chains.length) o.chains = r.chains.map((x) => ({ layers: x.layers, createdAt: x.createdAt }));
    if (r.digest) o.digest = r.digest;
    if (r.inputs.length) o.inputs = r.inputs.map((list) => list.map((i) => (i.selector ? { selector: i.selector, link: i.link } : { link: i.link })));
    return o;
  });
}

// The layer descriptors an envelope lists, annotated as BuildKit's importer wants them.
export function layerDescriptor(b: LayerBlob, mediaType: string, created?: string): Descriptor {
  const annotations: Record<string, string> = { [ANNOTATION_UNCOMPRESSED]: b.diffId };
  if (created) annotations[ANNOTATION_CREATED_AT] = goTime(created);
  return { mediaType, digest: b.digest, size: b.size, annotations };
}

function corrupt(what: string, why: string): ContentError {
  return new ContentError(`cache config ${what} is not a valid BuildKit cache: ${why}`, { hint: 'export the cache again (--cache-to)' });
}

const isInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n);

// Parses a config (or, for inline caches, the records alone with `layers` given)
// with every index checked, so a corrupt cache is one error and never a crash.
export function parseConfig(json: unknown, what: string): CacheConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw corrupt(what, 'not a JSON object');
  const o = json as { layers?: unknown; records?: unknown };
  const rawLayers = o.layers ?? [];
  if (!Array.isArray(rawLayers)) throw corrupt(what, '"layers" is not a list');
  const layers: CacheLayer[] = rawLayers.map((l: { blob?: unknown; parent?: unknown; annotations?: CacheLayer['annotations'] }, i) => {
    if (typeof l?.blob !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(l.blob)) throw corrupt(what, `layer ${i} has no blob digest`);
    const parent = l.parent ?? 0; // omitempty: a missing parent is layer 0
    if (!isInt(parent) || parent < -1 || parent >= rawLayers.length) throw corrupt(what, `layer ${i} names parent ${String(parent)}`);
    return { blob: l.blob as Digest, parent, annotations: l.annotations };
  });
  return { layers, records: parseRecords(o.records ?? [], layers.length, what) };
}

export function parseRecords(raw: unknown, layerCount: number, what: string): CacheRecord[] {
  if (!Array.isArray(raw)) throw corrupt(what, '"records" is not a list');
  const checkLayer = (n: unknown, i: number): number => {
    if (!isInt(n) || n < 0 || n >= layerCount) throw corrupt(what, `record ${i} names layer ${String(n)}`);
    return n;
  };
  return raw.map((r: { digest?: unknown; inputs?: unknown; layers?: unknown; chains?: unknown }, i) => {
    if (!r || typeof r !== 'object') throw corrupt(what, `record ${i} is not an object`);
    const inputs = (Array.isArray(r.inputs) ? r.inputs : []).map((list: unknown) =>
      (Array.isArray(list) ? list : []).map((inp: { selector?: unknown; link?: unknown }) => {
        if (!isInt(inp?.link) || inp.link < 0 || inp.link >= raw.length) throw corrupt(what, `record ${i} links to record ${String(inp?.link)}`);
        return { selector: typeof inp.selector === 'string' ? inp.selector : undefined, link: inp.link };
      }),
    );
    const results = (Array.isArray(r.layers) ? r.layers : []).map((x: { layer?: unknown; createdAt?: unknown }) => ({
      layer: checkLayer(x?.layer, i),
      createdAt: typeof x?.createdAt === 'string' ? x.createdAt : ZERO_TIME,
    }));
    const chains = (Array.isArray(r.chains) ? r.chains : []).map((x: { layers?: unknown; createdAt?: unknown }) => ({
      layers: (Array.isArray(x?.layers) ? x.layers : []).map((n: unknown) => checkLayer(n, i)),
      createdAt: typeof x?.createdAt === 'string' ? x.createdAt : ZERO_TIME,
    }));
    return { digest: typeof r.digest === 'string' ? r.digest : '', inputs, results, chains };
  });
}

// Results by record digest (the newest of a record's results), each a chain of
// layers that `blob` can describe; a chain naming a blob it cannot is skipped,
// as BuildKit skips results whose blobs the envelope does not provide.
export function resultsByKey(c: CacheConfig, blob: (digest: Digest) => LayerBlob | undefined, what: string): Map<string, CachedResult> {
  const chainOf = (top: number): LayerBlob[] | undefined => {
    const out: LayerBlob[] = [];
    const seen = new Set<number>();
    for (let i = top; i !== -1; i = c.layers[i].parent) {
      if (seen.has(i)) throw corrupt(what, `layer ${top}'s parents loop`);
      seen.add(i);
      const b = blob(c.layers[i].blob);
      if (!b) return undefined;
      out.unshift(b);
    }
    return out;
  };
  const out = new Map<string, CachedResult>();
  for (const r of c.records) {
    if (!r.digest) continue;
    const found: { layers: LayerBlob[]; createdAt: string }[] = [];
    for (const res of r.results) {
      const layers = chainOf(res.layer);
      if (layers) found.push({ layers, createdAt: res.createdAt });
    }
    for (const ch of r.chains) {
      const layers = ch.layers.map((i) => blob(c.layers[i].blob));
      if (layers.every((l): l is LayerBlob => l !== undefined)) found.push({ layers, createdAt: ch.createdAt });
    }
    if (!found.length) continue;
    found.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    const best = found[0];
    const prev = out.get(r.digest);
    const created = best.createdAt === ZERO_TIME ? undefined : best.createdAt;
    if (!prev || (created ?? '') > (prev.created ?? '')) out.set(r.digest, { layers: best.layers, created });
  }
  return out;
}

// A LayerBlob from a descriptor an envelope lists (diffID from its annotation,
// else from the config's layer annotations, as BuildKit's non-registry backends write it).
export function blobOf(d: Descriptor, fallback?: CacheLayer['annotations']): LayerBlob | undefined {
  const diffId = (d.annotations?.[ANNOTATION_UNCOMPRESSED] ?? fallback?.diffID) as Digest | undefined;
  if (!diffId) return undefined;
  return { digest: d.digest, diffId, mediaType: d.mediaType, size: d.size };
}
