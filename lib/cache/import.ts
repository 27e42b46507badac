// Imported caches (--cache-from), consulted after the local cache: a key found
// in one of them is a hit whose layers stay where they are (registry, directory)
// until something needs them. Only when a later step that misses builds on it
// is the chain fetched and unpacked (materialize); an image output fetches just
// the final image's layers, and a push to the cache's own registry mounts them.
import { ContentStore } from '../content/store';
import type { LayerSlot } from '../export/index';
import type { BlobSource, Descriptor, ImageConfig, Manifest } from '../images/types';
import { unpackImage } from '../snapshot/index';
import type { Snapshotter } from '../snapshot/types';
import { Limiter } from '../util/limiter';
import type { CachedResult } from './format';

// Layers downloaded at once, as a pull does.
const FETCH_CONCURRENCY = 4;

// One --cache-from source, read: its results by cache key and where its blobs are.
export interface LoadedCache {
  what: string; // "cache 127.0.0.1:5000/app:cache", "cache /path/dir"
  results: Map<string, CachedResult>;
  source: BlobSource;
}

export interface ImportedResult {
  layers: LayerSlot[]; // every slot has its blob and source
  created?: string;
  from: string; // the LoadedCache's `what`
}

export interface MaterializeProgress {
  status(sub: string, s: { name: string; current?: number; total?: number; done?: boolean }): void;
}

export class ImportedCaches {
  constructor(
    readonly loaded: LoadedCache[],
    private readonly o: { stateDir: string; sn: Snapshotter },
  ) {}

  get size(): number {
    return this.loaded.reduce((n, c) => n + c.results.size, 0);
  }

  // The first source (in --cache-from order) that has the key.
  lookup(key: string): ImportedResult | undefined {
    for (const c of this.loaded) {
      const r = c.results.get(key);
      if (r) return { layers: r.layers.map((blob) => ({ blob, source: c.source })), created: r.created, from: c.what };
    }
    return undefined;
  }

  // Fetches the chain's missing blobs and unpacks it into snapshots (one per
  // layer, named by chainID and so shared with pulled images); returns the top
  // snapshot and slots whose blobs are now all in the content store.
  async materialize(layers: LayerSlot[], what: string, progress?: MaterializeProgress): Promise<{ snapshot: string; layers: LayerSlot[] }> {
    const store = new ContentStore(this.o.stateDir);
    const descs: Descriptor[] = layers.map((l) => ({ mediaType: l.blob!.mediaType, digest: l.blob!.digest, size: l.blob!.size }));
    const limiter = new Limiter(FETCH_CONCURRENCY);
    await Promise.all(
      layers.map((l, i) =>
        limiter.run(async () => {
          if (await store.has(descs[i].digest)) return;
          progress?.status(descs[i].digest, { name: `fetching ${descs[i].digest}`, total: descs[i].size });
          await l.source!.fetch(descs[i]);
          progress?.status(descs[i].digest, { name: `fetching ${descs[i].digest}`, current: descs[i].size, total: descs[i].size, done: true });
        }),
      ),
    );
    const manifest: Manifest = { schemaVersion: 2, config: { mediaType: '', digest: descs[0].digest, size: 0 }, layers: descs };
    const config = { rootfs: { type: 'layers', diff_ids: layers.map((l) => l.blob!.diffId) } } as ImageConfig;
    const snapshot = await unpackImage(
      this.o.stateDir,
      this.o.sn,
      manifest,
      config,
      (ev) => {
        if (ev.status === 'extracting') progress?.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}` });
        else if (ev.status === 'done') progress?.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}`, current: ev.bytes, done: true });
      },
      { ref: what },
    );
    return { snapshot, layers: layers.map((l) => ({ blob: l.blob })) };
  }
}
