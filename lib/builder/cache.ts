// --cache-from and --cache-to for one build: the flags (buildx CSV), the imports
// made before the solve, and what is exported after it. What a record holds
// comes from the graph and the solve: every vertex the roots reach (one per
// platform) gets a record (its key, its inputs' keys); results go with it by mode —
//   min  results on the final images' chains only (no blob beyond the images')
//   max  every result the build has (intermediate stages too), except the local
//        context's snapshot: a COPY is keyed by the checksum of the files it
//        copies, so the context itself is never needed from a cache.
import type { ExportEntry } from '../cache/format';
import { checkEnvelopeOptions, describeExport, describeImport, exportCache, ImportedCaches, inlineCacheField, loadCache, type CacheExportSpec, type CacheImportSpec, type LoadedCache } from '../cache/index';
import { exportLayers, type BuildResult, type ExportEnv, type ImageFormat, type LayerSlot } from '../export/index';
import type { BuildGraph, Ref, Vertex } from '../graph/types';
import { parseReference } from '../images/reference';
import type { BlobSource, Digest } from '../images/types';
import type { Progress } from '../progress/index';
import type { Snapshotter } from '../snapshot/types';
import type { SolveRootsResult } from '../solver/scheduler';
import type { CacheBackend } from '../solver/types';
import { UnsupportedError, UsageError } from '../util/errors';
import { warn } from '../util/log';
import { parseBool, parseCsv, parseImageFormat } from './options';

const CACHE_TO_HINT = 'use --cache-to type=registry,ref=REGISTRY/NAME:TAG[,mode=max] | type=local,dest=DIR | type=inline';
const CACHE_FROM_HINT = 'use --cache-from type=registry,ref=REGISTRY/NAME:TAG | type=local,src=DIR | REGISTRY/NAME:TAG';
const FORMAT_KEYS = ['compression', 'compression-level', 'force-compression', 'oci-mediatypes', 'image-manifest', 'mode', 'ignore-error'];
const CACHE_TO_KEYS: Record<string, string[]> = {
  registry: ['ref', 'registry.insecure', ...FORMAT_KEYS],
  local: ['dest', 'tag', ...FORMAT_KEYS],
  inline: ['mode', 'ignore-error'],
};
const CACHE_FROM_KEYS: Record<string, string[]> = { registry: ['ref', 'registry.insecure'], local: ['src', 'tag', 'digest'] };
// BuildKit backends img does not implement.
const OTHER_BACKENDS = ['gha', 's3', 'azblob', 'oss', 'gcs'];

function fieldsOf(spec: string, flag: string, hint: string): Record<string, string> {
  // A bare reference is buildx's shorthand for type=registry,ref=…
  if (!spec.includes('=')) return { type: 'registry', ref: spec };
  const fields: Record<string, string> = {};
  for (const f of parseCsv(spec)) {
    const i = f.indexOf('=');
    if (i <= 0) throw new UsageError(`invalid ${flag} field "${f}": expected key=value`, { hint });
    fields[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1);
  }
  fields.type ??= fields.ref ? 'registry' : '';
  return fields;
}

function checkKeys(fields: Record<string, string>, known: Record<string, string[]>, flag: string, hint: string): string[] {
  const type = fields.type;
  if (OTHER_BACKENDS.includes(type)) throw new UnsupportedError(`${flag} type=${type} is not supported by img`, { hint: `share the cache through a registry or a directory: ${hint}` });
  const keys = known[type];
  if (!keys) throw new UsageError(`${flag} type "${type}" is not a cache type`, { hint });
  for (const k of Object.keys(fields)) {
    if (k !== 'type' && !keys.includes(k)) throw new UnsupportedError(`${flag} type=${type} does not support the option "${k}"`, { hint: `type=${type} takes ${keys.join(', ')}` });
  }
  return keys;
}

function cacheRef(v: string | undefined, flag: string, hint: string): string {
  if (!v) throw new UsageError(`${flag} type=registry needs ref=REGISTRY/NAME:TAG`, { hint });
  try {
    parseReference(v);
  } catch (err) {
    throw new UsageError(`${flag} ref=${v} is not an image reference: ${(err as Error).message}`, { hint, cause: err });
  }
  return v;
}

export function parseCacheTo(spec: string): CacheExportSpec {
  const flag = '--cache-to';
  const f = fieldsOf(spec, flag, CACHE_TO_HINT);
  checkKeys(f, CACHE_TO_KEYS, flag, CACHE_TO_HINT);
  const mode = f.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag} mode=${mode} is not a cache mode`, { hint: 'use mode=min (the final image) or mode=max (every stage)' });
  const ignoreError = f['ignore-error'] !== undefined && parseBool(f['ignore-error'], 'ignore-error');
  if (f.type === 'inline') {
    if (mode !== 'min') throw new UnsupportedError(`${flag} type=inline supports mode=min only (the image carries its own layers' records)`, { hint: 'use type=registry,ref=…,mode=max for every stage' });
    return { type: 'inline', mode: 'min', ignoreError };
  }
  const ociMediaTypes = f['oci-mediatypes'] === undefined || parseBool(f['oci-mediatypes'], 'oci-mediatypes');
  // BuildKit ≥ 0.21: the image-manifest envelope by default, with OCI media types.
  const imageManifest = f['image-manifest'] !== undefined ? parseBool(f['image-manifest'], 'image-manifest') : ociMediaTypes;
  const { ociMediaTypes: _o, ...format }: ImageFormat = parseImageFormat({ ...f, 'oci-mediatypes': String(ociMediaTypes) }, `${flag} type=${f.type}`);
  const common = { mode: mode as 'min' | 'max', format, ociMediaTypes, imageManifest, ignoreError };
  checkEnvelopeOptions(common, `${flag} type=${f.type}`);
  if (f.type === 'registry') {
    const ref = cacheRef(f.ref, flag, CACHE_TO_HINT);
    if (parseReference(ref).digest) throw new UsageError(`${flag} ref=${ref} names a digest; a cache is written under a tag`, { hint: 'use ref=REGISTRY/NAME:TAG' });
    const out: CacheExportSpec = { type: 'registry', ref, ...common };
    if (f['registry.insecure'] !== undefined) out.insecure = parseBool(f['registry.insecure'], 'registry.insecure');
    return out;
  }
  if (!f.dest) throw new UsageError(`${flag} type=local needs dest=DIR`, { hint: CACHE_TO_HINT });
  return { type: 'local', dest: f.dest, tag: f.tag || 'latest', ...common };
}

export function parseCacheFrom(spec: string): CacheImportSpec {
  const flag = '--cache-from';
  const f = fieldsOf(spec, flag, CACHE_FROM_HINT);
  checkKeys(f, CACHE_FROM_KEYS, flag, CACHE_FROM_HINT);
  if (f.type === 'registry') {
    const out: CacheImportSpec = { type: 'registry', ref: cacheRef(f.ref, flag, CACHE_FROM_HINT) };
    if (f['registry.insecure'] !== undefined) out.insecure = parseBool(f['registry.insecure'], 'registry.insecure');
    return out;
  }
  if (!f.src) throw new UsageError(`${flag} type=local needs src=DIR`, { hint: CACHE_FROM_HINT });
  if (f.digest && !/^sha256:[0-9a-f]{64}$/.test(f.digest)) throw new UsageError(`${flag} digest=${f.digest} is not a sha256 digest`, { hint: 'use digest=sha256:<64 hex digits>, or tag=' });
  return { type: 'local', src: f.src, tag: f.tag, digest: f.digest };
}

// Reads every --cache-from, each shown as BuildKit shows it; a source that
// cannot be read is a warning and the build goes on without it.
export async function importCaches(specs: CacheImportSpec[], o: { stateDir: string; sn: Snapshotter; progress: Progress }): Promise<ImportedCaches> {
  const loaded = await Promise.all(
    specs.map((s, i) =>
      o.progress.vertex(`cache:import:${i}`, `importing cache manifest from ${describeImport(s)}`, async () => {
        try {
          return await loadCache(s, o);
        } catch (err) {
          warn(`cannot import cache from ${describeImport(s)}: ${(err as Error)?.message ?? String(err)}; building without it`);
          return null;
        }
      }),
    ),
  );
  return new ImportedCaches(
    loaded.filter((c): c is LoadedCache => c !== null),
    { stateDir: o.stateDir, sn: o.sn },
  );
}

export interface CacheExportContext {
  // The build's vertices and its roots, one per platform (solveRoots' input and output).
  graph: { vertices: BuildGraph['vertices']; roots: (Ref | null)[] };
  solved: SolveRootsResult;
  backend: CacheBackend;
  env: ExportEnv;
  progress: Progress;
}

// Two slots are the same layer when they name the same snapshot or the same blob.
const sameLayer = (a: LayerSlot, b: LayerSlot): boolean =>
  Boolean((a.snapshot && a.snapshot === b.snapshot) || (a.blob && b.blob && a.blob.digest === b.blob.digest));
const onChain = (layers: LayerSlot[], chain: LayerSlot[]): boolean => layers.length <= chain.length && layers.every((l, i) => sameLayer(l, chain[i]));

// Every vertex the roots reach, inputs before the vertices that read them.
function reachable(graph: CacheExportContext['graph']): Vertex[] {
  const out: Vertex[] = [];
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    const v = graph.vertices[id];
    for (const r of v.inputs) visit(r.vertex);
    out.push(v);
  };
  for (const root of graph.roots) if (root) visit(root.vertex);
  return out;
}

// The entries to export in `format`, and where the blobs not stored here are.
async function entriesFor(c: CacheExportContext, mode: 'min' | 'max', format: ImageFormat): Promise<{ entries: ExportEntry[]; sources: Map<Digest, BlobSource> }> {
  const entries: ExportEntry[] = [];
  const sources = new Map<Digest, BlobSource>();
  const finalChains = c.solved.roots.map((r) => r.result.layers);
  for (const v of reachable(c.graph)) {
    const key = c.solved.keys.get(v.id);
    if (!key) continue;
    const inputs = v.inputs.map((r) => c.solved.keys.get(r.vertex)).filter((k): k is string => k !== undefined);
    const entry: ExportEntry = { key, inputs };
    entries.push(entry);
    if (v.kind === 'local') continue;
    const result = c.solved.results.get(v.id) ?? (await c.backend.get(key, v));
    if (!result || result.layers.length === 0) continue;
    if (mode === 'min' && !finalChains.some((chain) => onChain(result.layers, chain))) continue;
    const made = await exportLayers(result.layers, c.env, format);
    for (const m of made) if (m.source) sources.set(m.blob.digest, m.source);
    entry.result = { layers: made.map((m) => m.blob), created: result.created };
  }
  return { entries, sources };
}

// --cache-to type=inline: the records for the image's config (see cache/inline.ts).
export async function inlineCache(c: CacheExportContext, result: BuildResult, format: ImageFormat): Promise<string | undefined> {
  const { entries } = await entriesFor(c, 'min', format);
  const image = await exportLayers(result.layers, c.env, format);
  return inlineCacheField(entries, image.map((m) => m.blob.digest));
}

// Every --cache-to but inline, one progress step each; a failure fails the
// build unless the spec says ignore-error=true.
export async function exportCaches(specs: CacheExportSpec[], c: CacheExportContext): Promise<void> {
  for (const [i, s] of specs.entries()) {
    if (s.type === 'inline') continue;
    const id = `cache:export:${i}`;
    const name = s.type === 'registry' ? 'exporting cache to registry' : 'exporting cache to client directory';
    try {
      await c.progress.vertex(id, name, async () => {
        c.progress.status(id, 'prepare', { name: 'preparing build cache for export' });
        const { entries, sources } = await entriesFor(c, s.mode, s.format);
        c.progress.status(id, 'prepare', { name: 'preparing build cache for export', done: true });
        const digest = await exportCache(s, entries, { stateDir: c.env.stateDir, sources });
        c.progress.status(id, 'manifest', { name: `writing cache manifest ${digest} to ${describeExport(s)}`, done: true });
      });
    } catch (err) {
      if (!s.ignoreError) throw err;
      warn(`cannot export cache to ${describeExport(s)}: ${(err as Error)?.message ?? String(err)} (ignore-error=true)`);
    }
  }
}
