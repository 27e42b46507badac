// The persistent build cache: cache key → result record, shared by every img
// process on a state dir and surviving crashes.
//
// FILE LAYOUT (under <state>/cache/; `img prune` removes records/, layers/, roots/, checksums/, local-sources/):
//   records/<key hex>.json   {version, key, name, kind, snapshot, layers: [{snapshot?, blob?}], meta?, created}
//                            written atomically (temp + fsync + rename) after the
//                            vertex's snapshot is committed (under the key).
//   roots/rec-<key hex>.json {"digests": [...]} GC root (lib/state/gc.ts) for the
//                            blobs a record names; written before the record itself,
//                            under the store's shared lock, removed with it.
//   layers/, roots/layer-*   the exporter's snapshot → layer blob memo (export/layer-memo.ts)
//   checksums/<hex>/         stat-keyed checksum cache of a local context, a record per directory (checksum.ts)
//   mounts/<id hex>/         RUN --mount=type=cache directories
// Per-key locks: <state>/locks/cache/<key hex>.lock (flock, exclusive while a
// process computes that key; others wait, then find the record).
//
// A record is only trusted when its snapshot still exists and its blobs are in
// the content store; otherwise it is a miss (and is rewritten by the next run).
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { LayerBlob } from '../images/types';
import type { Vertex } from '../graph/types';
import { registerCacheRoot } from '../state/gc';
import { isErrno } from '../util/errors';
import { debug } from '../util/log';
import { readJsonRecord, writeJsonAtomic } from '../util/fsutil';
import { keyHex } from './keys';
import type { ImportedCaches } from '../cache/index';
import type { CacheBackend, CacheLock, LayerSlot, VertexLogger, VertexResult } from './types';

const VERSION = 1;

export interface CacheRecord {
  version: number;
  key: string;
  name: string;
  kind: string;
  snapshot: string | null;
  layers: LayerSlot[];
  meta?: Record<string, unknown>;
  created: string;
}

export interface CacheStoreOptions {
  snapshotExists?(id: string): Promise<boolean>;
  blobExists?(digest: string): Promise<boolean>;
  lockFile?(file: string, mode: 'shared' | 'exclusive', opts?: { wait?: boolean }): Promise<CacheLock>;
  // The blob the exporter made from a snapshot (export/layer-memo.ts): a hit
  // carries it, and stays usable when that layer's snapshot is gone.
  layerBlob?(snapshot: string): Promise<LayerBlob | undefined>;
}

export function cacheDir(stateDir: string): string {
  return path.join(stateDir, 'cache');
}

export class CacheStore implements CacheBackend {
  readonly dir: string;

  constructor(
    readonly stateDir: string,
    private readonly opts: CacheStoreOptions = {},
  ) {
    this.dir = cacheDir(stateDir);
  }

  recordPath(key: string): string {
    return path.join(this.dir, 'records', `${keyHex(key)}.json`);
  }

  async get(key: string, _v?: Vertex): Promise<VertexResult | null> {
    const rec = await readJsonRecord<CacheRecord>(this.recordPath(key));
    if (!rec || rec.version !== VERSION || rec.key !== key) return null;
    if (rec.snapshot && this.opts.snapshotExists && !(await this.opts.snapshotExists(rec.snapshot))) {
      debug(`cache: ${key} names missing snapshot ${rec.snapshot}; recomputing`);
      return null;
    }
    const layers: LayerSlot[] = [];
    for (const slot of rec.layers) {
      let blob = slot.blob ?? (slot.snapshot ? await this.opts.layerBlob?.(slot.snapshot) : undefined);
      if (blob && this.opts.blobExists && !(await this.opts.blobExists(blob.digest))) blob = undefined;
      if (!blob && !slot.snapshot) return null; // a base layer we can no longer produce
      if (slot.snapshot && this.opts.snapshotExists && !blob && !(await this.opts.snapshotExists(slot.snapshot))) return null;
      layers.push({ snapshot: slot.snapshot, blob });
    }
    return { snapshot: rec.snapshot, layers, meta: rec.meta, created: rec.created };
  }

  async put(key: string, v: Pick<Vertex, 'name' | 'kind'>, result: VertexResult): Promise<void> {
    const digests = result.layers.flatMap((l) => (l.blob ? [l.blob.digest] : []));
    const what = `the build cache record of ${v.name}`;
    if (digests.length) await registerCacheRoot(this.stateDir, `rec-${keyHex(key)}`, digests, what);
    const rec: CacheRecord = {
      version: VERSION,
      key,
      name: v.name,
      kind: v.kind,
      snapshot: result.snapshot,
      layers: result.layers.map((l) => (l.snapshot ? { snapshot: l.snapshot } : { blob: l.blob })),
      meta: result.meta,
      created: result.created ?? new Date().toISOString(),
    };
    await writeJsonAtomic(this.recordPath(key), rec, what);
  }

  async lock(key: string): Promise<CacheLock> {
    if (!this.opts.lockFile) return { release: async () => {} };
    const file = path.join(this.stateDir, 'locks', 'cache', `${keyHex(key)}.lock`);
    // The directory exists but for a store's first step: make it only then
    // (one round trip less for every step that runs).
    try {
      return await this.opts.lockFile(file, 'exclusive', { wait: true });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await fsp.mkdir(path.dirname(file), { recursive: true });
      return this.opts.lockFile(file, 'exclusive', { wait: true });
    }
  }

  // RUN --mount=type=cache directory for an id (shared across builds).
  mountDir(id: string): string {
    return path.join(this.dir, 'mounts', createHash('sha256').update(id).digest('hex'));
  }
}

// The local records first, then the imported caches (--cache-from) in their
// order. An imported hit is lazy (VertexResult.lazy): materialize() fetches and
// unpacks it when a step builds on it, and records it locally, so the next
// build on this state dir finds it without the import.
export class CacheWithImports implements CacheBackend {
  constructor(
    private readonly local: CacheStore,
    private readonly imports: ImportedCaches,
  ) {}

  async get(key: string, v: Vertex): Promise<VertexResult | null> {
    const hit = await this.local.get(key, v);
    if (hit) return hit;
    const imported = this.imports.lookup(key);
    if (!imported) return null;
    debug(`cache: ${v.name} found in ${imported.from}`);
    return { snapshot: null, layers: imported.layers, created: imported.created, lazy: true, meta: { importedFrom: imported.from } };
  }

  put(key: string, v: Vertex, result: VertexResult): Promise<void> {
    return this.local.put(key, v, result);
  }

  lock(key: string): Promise<CacheLock> {
    return this.local.lock(key);
  }

  async materialize(key: string, v: Vertex, result: VertexResult, progress: VertexLogger): Promise<VertexResult> {
    const from = String(result.meta?.importedFrom ?? 'an imported cache');
    const got = await this.imports.materialize(result.layers, from, progress);
    const done: VertexResult = { snapshot: got.snapshot, layers: got.layers, created: result.created };
    await this.local.put(key, v, done);
    return done;
  }
}
