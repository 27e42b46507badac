// What the executors of one build share: the builder's options, the stores, the
// one table one op fills and another reads (the local sources' scans, which COPY
// keys by), and the step every op ends with — a snapshot filled and committed
// under the vertex's cache key, so other processes and later builds reuse it.
import type { LocalSourceVertex } from '../../graph/types';
import { ContentStore } from '../../content/store';
import { ImageStore } from '../../images/store';
import type { Platform } from '../../images/types';
import { withMounted } from '../../snapshot/index';
import type { Rlimit } from '../../exec/spec';
import type { Snapshotter } from '../../snapshot/types';
import { debug } from '../../util/log';
import type { CacheStore } from '../cache';
import type { ContextScan, Selector } from '../checksum';
import type { SecretSource } from '../mounts';
import type { LayerSlot, RunContext, VertexResult } from '../types';

export interface RuntimeOptions {
  stateDir: string;
  sn: Snapshotter;
  cache: CacheStore;
  platform: Platform;
  // Local sources by name ("context", --build-context names) → directory.
  localDirs: Record<string, string>;
  // .dockerignore verdicts for a local source (undefined → take the vertex's excludePatterns).
  selectorFor?(source: string, v: LocalSourceVertex): Selector;
  secrets?: SecretSource[];
  ssh?: { id: string; paths: string[] }[];
  network?: 'default' | 'none' | 'host';
  extraHosts?: { host: string; ip: string }[];
  pull?: boolean; // always resolve image references at the registry
  insecureRegistry?: boolean;
  sourceDateEpoch?: number;
  env?: NodeJS.ProcessEnv;
  // --shm-size (bytes) and --ulimit for every RUN, as BuildKit's frontend puts them on each exec op.
  shmSize?: number;
  rlimits?: Rlimit[];
}

export class OpEnv {
  readonly content: ContentStore;
  readonly images: ImageStore;
  // Local source vertex id → its scan: digest and the selected entries, read back
  // in order (filled by the local op's contentKey; read by its run and by the
  // file op's contentKey).
  readonly contextScans = new Map<string, ContextScan>();

  constructor(readonly o: RuntimeOptions) {
    this.content = new ContentStore(o.stateDir);
    this.images = new ImageStore(o.stateDir);
  }

  get sn(): Snapshotter {
    return this.o.sn;
  }

  // A new snapshot on `parent`, filled by fn, committed under the cache key.
  // With --no-cache the fresh result must win over an older one under the same
  // key, so it is committed unkeyed (the cache record then points at it).
  // `unmounted` runs between unmount and commit (writes into the snapshot's own dir) and
  // returns what the commit records (the snapshots its files were linked from).
  async produce(
    parent: string | null,
    description: string,
    ctx: RunContext,
    fn: (root: string) => Promise<void>,
    unmounted?: (active: string) => Promise<{ linkedFrom?: string[] } | void>,
  ): Promise<string> {
    const active = await this.sn.prepare(parent, description);
    try {
      await withMounted(this.sn, active, fn);
      const opts = (await unmounted?.(active)) ?? {};
      return await this.sn.commit(active, description, ctx.noCache ? undefined : ctx.key, opts);
    } catch (err) {
      await this.sn.remove(active).catch((e) => debug(`removing ${active}: ${(e as Error).message}`));
      throw err;
    }
  }
}

// The layer chain of a result: its input's layers plus the one `snapshot` adds.
export function chainOf(input: VertexResult | undefined, snapshot: string): LayerSlot[] {
  return [...(input?.layers ?? []), { snapshot }];
}
