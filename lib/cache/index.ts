// cache/: build cache import and export in BuildKit's format (format.ts), in its
// envelopes (envelope.ts), to and from a registry (registry.ts), an OCI layout
// directory (local.ts) or an image config (inline.ts). The builder decides what
// to export (lib/builder/cache.ts); the solver consults what was imported
// (ImportedCaches) after its local records.
import type { ImageFormat } from '../export/index';
import type { BlobSource, Digest } from '../images/types';
import { checkEnvelopeOptions, makeEnvelope } from './envelope';
import { buildConfig, type ExportEntry } from './format';
import type { LoadedCache } from './import';
import { loadLocalCache, writeLocalCache } from './local';
import { loadRegistryCache, writeRegistryCache } from './registry';

export { CACHE_CONFIG_MEDIA_TYPE, INLINE_CACHE_FIELD, type ExportEntry } from './format';
export { ImportedCaches, type ImportedResult, type LoadedCache } from './import';
export { checkEnvelopeOptions } from './envelope';
export { inlineCacheField } from './inline';

export type CacheMode = 'min' | 'max';

interface ExportCommon {
  mode: CacheMode;
  format: ImageFormat; // compression, compression-level, force-compression of the cache's layers
  ociMediaTypes: boolean;
  imageManifest: boolean;
  ignoreError: boolean;
}

export type CacheExportSpec =
  | ({ type: 'registry'; ref: string; insecure?: boolean } & ExportCommon)
  | ({ type: 'local'; dest: string; tag: string } & ExportCommon)
  | { type: 'inline'; mode: 'min'; ignoreError: boolean };

export type CacheImportSpec = { type: 'registry'; ref: string; insecure?: boolean } | { type: 'local'; src: string; tag?: string; digest?: string };

export function describeImport(s: CacheImportSpec): string {
  return s.type === 'registry' ? s.ref : s.src;
}

export function describeExport(s: CacheExportSpec): string {
  return s.type === 'registry' ? s.ref : s.type === 'local' ? s.dest : 'inline';
}

// Reads one --cache-from source. A missing or unreadable one is an error here;
// the builder turns it into a warning and builds without it, as BuildKit does.
export function loadCache(s: CacheImportSpec, o: { stateDir: string }): Promise<LoadedCache> {
  return s.type === 'registry'
    ? loadRegistryCache(s.ref, { stateDir: o.stateDir, insecure: s.insecure })
    : loadLocalCache(s.src, { stateDir: o.stateDir, tag: s.tag, digest: s.digest });
}

// Writes one --cache-to (registry or local) of the entries, whose blobs are in
// the content store or reachable through `sources`. Returns the envelope's digest.
export async function exportCache(
  spec: Extract<CacheExportSpec, { type: 'registry' | 'local' }>,
  entries: ExportEntry[],
  o: { stateDir: string; sources: ReadonlyMap<Digest, BlobSource> },
): Promise<Digest> {
  checkEnvelopeOptions(spec, `--cache-to type=${spec.type}`);
  const { config, blobs } = buildConfig(entries);
  const created = new Map<Digest, string>();
  for (const e of entries) for (const l of e.result?.layers ?? []) if (e.result?.created && !created.has(l.digest)) created.set(l.digest, e.result.created);
  const env = makeEnvelope(config, blobs, created, spec);
  if (spec.type === 'registry') return writeRegistryCache(spec.ref, env, { stateDir: o.stateDir, insecure: spec.insecure, sources: o.sources });
  await writeLocalCache(spec.dest, spec.tag, env, { stateDir: o.stateDir, sources: o.sources });
  return env.manifest.desc.digest;
}
