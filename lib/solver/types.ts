// What the solver passes around: results of vertices, executors (one per
// vertex kind, injected so the scheduler is testable with fakes) and the
// cache backend it consults.
import type { Vertex } from '../graph/types';
import type { LayerSlot } from '../export/result';

export type { LayerSlot };

export interface VertexResult {
  // Committed snapshot holding this vertex's filesystem (null = empty, scratch).
  snapshot: string | null;
  // Bottom-to-top layers that rebuild `snapshot` when stacked.
  layers: LayerSlot[];
  // Extra data a source may carry (e.g. the image config of a pulled image).
  meta?: Record<string, unknown>;
  // When the result was first produced (from the cache record on a hit): a
  // fully cached build then dates its image the same and gets the same digest.
  created?: string;
  // A hit from an imported cache (--cache-from): `layers` name blobs that may
  // still be remote (LayerSlot.source) and `snapshot` is null until the cache
  // backend's materialize() unpacks them, which happens only when a step that
  // runs builds on it (or the caller wants the filesystem).
  lazy?: boolean;
}

export interface VertexLogger {
  log(data: string | Uint8Array, stream?: 1 | 2): void;
  status(sub: string, s: { name: string; current?: number; total?: number; done?: boolean }): void;
}

export interface KeyContext {
  signal: AbortSignal;
  progress: VertexLogger;
  noCache: boolean;
}

export interface RunContext extends KeyContext {
  key: string;
  inputs: VertexResult[]; // results of vertex.inputs, in order
  inputVertices: Vertex[]; // the vertices those results came from
}

export interface Executor<V extends Vertex = Vertex> {
  // Content that the definition does not capture, mixed into the cache key
  // before lookup: a local source's checksum, an image's manifest digest.
  // May instead replace some inputs' keys: a COPY from the build context is
  // keyed by the checksum of the files it copies, not of the whole context.
  contentKey?(v: V, ctx: KeyContext & { inputVertices: Vertex[] }): Promise<string | ContentKey | undefined>;
  run(v: V, ctx: RunContext): Promise<VertexResult>;
}

export interface ContentKey {
  content: string;
  replaceInputs?: number[]; // input indices whose keys `content` stands for
}

export type Executors = { [K in Vertex['kind']]?: Executor<Extract<Vertex, { kind: K }>> };

export interface CacheLock {
  release(): Promise<void>;
}

export interface CacheBackend {
  get(key: string, v: Vertex): Promise<VertexResult | null>;
  put(key: string, v: Vertex, result: VertexResult): Promise<void>;
  // Cross-process exclusion for computing one key (no-op in memory).
  lock?(key: string): Promise<CacheLock>;
  // The filesystem of a lazy hit (see VertexResult.lazy): fetched, unpacked, recorded.
  materialize?(key: string, v: Vertex, result: VertexResult, progress: VertexLogger): Promise<VertexResult>;
}
