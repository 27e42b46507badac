// The scheduler: computes cache keys for the graph, then materializes the root
// (or several roots at once: a build for several platforms) lazily — a vertex whose key hits the cache never needs its inputs — running
// misses as soon as their inputs are done (at most `concurrency` at a time, when capped).
// A hit from an imported cache stays remote until a miss builds on it; if its
// layers cannot be had then, the step runs instead (a warning, not a failure).
// Vertices with equal keys run once. The first failure aborts everything
// else (AbortSignal to running executors, waiters rejected) and the solve
// rejects with a SolveError naming the step and the tail of its output.
import { setMaxListeners } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import type { BuildGraph, LineRange, Ref, Vertex } from '../graph/types';
import type { Progress } from '../progress/events';
import { AbortError, ImgError, isAbortError, StepError, UsageError } from '../util/errors';
import { cacheKey } from './keys';
import { Limiter } from '../util/limiter';
import { warn } from '../util/log';
import type { CacheBackend, Executor, Executors, VertexLogger, VertexResult } from './types';

const TAIL = 20;

export interface SolveOptions {
  executors: Executors;
  cache?: CacheBackend;
  concurrency?: number;
  progress?: Progress;
  signal?: AbortSignal;
  noCache?: boolean; // ignore cache hits (results are still recorded)
  materializeRoot?: boolean; // the caller reads the root's filesystem: unpack a lazy root hit
}

export interface SolveResult {
  key: string | null;
  result: VertexResult; // of graph.root; an empty result for a null root
  keys: Map<string, string>; // vertex id → cache key
  cached: Set<string>; // vertex ids reported CACHED
  executed: Set<string>; // vertex ids whose executor ran
  results: Map<string, VertexResult>; // vertex id → result, for the vertices visited
}

// A step failed. `message` is BuildKit's one line ("failed to solve: process
// … did not complete successfully: exit code: 3"); the step is `vertexName`,
// its last output lines `tail`, its Dockerfile lines `location` (what the
// failure context shows).
export class SolveError extends StepError {
  constructor(
    readonly vertexName: string,
    readonly cause0: unknown,
    readonly tail: string[],
    readonly location?: LineRange[],
  ) {
    const why = (cause0 as Error)?.message ?? String(cause0);
    super(`failed to solve: ${why}`, {
      hint: (cause0 as ImgError)?.hint,
      detail: tail.join('\n'),
      cause: cause0,
      exitCode: (cause0 as ImgError)?.exitCode ?? 1,
    });
    this.name = 'SolveError';
  }
}

// How many steps may run at once: no cap unless IMG_MAX_PARALLELISM says, as
// BuildKit (its max-parallelism is unset by default). A step mostly waits — on
// a RUN's sleep, the network, the disk — and a core-count cap made four 2 s
// stages take 4 s on two cores. CPU-heavy work caps itself where it runs:
// compression and decompression on the addon's codec pool (a thread a core),
// context hashing on this process's one thread.
export function defaultConcurrency(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.IMG_MAX_PARALLELISM;
  if (raw === undefined || raw === '') return Infinity;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 1) return n;
  throw new UsageError(`IMG_MAX_PARALLELISM=${raw} is not a positive whole number`, {
    hint: 'set it to the most steps that may run at once (e.g. IMG_MAX_PARALLELISM=4), or unset it for no cap',
  });
}

export async function solve(graph: Pick<BuildGraph, 'vertices' | 'root'>, opts: SolveOptions): Promise<SolveResult> {
  const { roots, ...rest } = await solveRoots(graph.vertices, [graph.root], opts);
  return { ...rest, ...roots[0] };
}

export interface SolveRootsResult extends Omit<SolveResult, 'key' | 'result'> {
  roots: { key: string | null; result: VertexResult }[]; // in the order of the roots given
}

// Several roots over one vertex table (the graphs of a multi-platform build,
// merged: equal vertices have equal ids) in one run: a vertex they share, such
// as a `FROM --platform=$BUILDPLATFORM` stage or the context transfer, runs
// once, and independent work of the roots runs side by side.
export async function solveRoots(vertices: BuildGraph['vertices'], roots: (Ref | null)[], opts: SolveOptions): Promise<SolveRootsResult> {
  return new Solver({ vertices, roots }, opts).run();
}

class Solver {
  private readonly ac = new AbortController();
  private readonly limiter: Limiter;
  private readonly keyMemo = new Map<string, Promise<string>>(); // vertex id → key
  private readonly byKey = new Map<string, Promise<VertexResult>>(); // key → result
  private readonly states = new Map<string, 'started' | 'done'>(); // vertex id → reported state
  private readonly tails = new Map<string, string[]>();
  private readonly keys = new Map<string, string>();
  private readonly cached = new Set<string>();
  private readonly executed = new Set<string>();
  private readonly results = new Map<string, VertexResult>();
  private readonly unlazied = new Map<string, Promise<VertexResult>>(); // key → materialized lazy hit
  private firstError: unknown = null;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly graph: { vertices: BuildGraph['vertices']; roots: (Ref | null)[] },
    private readonly opts: SolveOptions,
  ) {
    this.limiter = new Limiter(opts.concurrency ?? defaultConcurrency());
    // Every running step listens for the abort; that is not a leak.
    setMaxListeners(0, this.ac.signal);
    if (opts.signal) {
      if (opts.signal.aborted) this.ac.abort(opts.signal.reason);
      else opts.signal.addEventListener('abort', () => this.ac.abort(opts.signal!.reason), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  async run(): Promise<SolveRootsResult> {
    try {
      // --no-cache-filter's steps run even when a step built on them hits the cache
      // (as BuildKit's ignore-cache edges, which never answer from the cache); what
      // is built on them may still be cached after they ran.
      const forced = this.opts.noCache ? [] : this.reachable().filter((id) => this.vertex(id).noCacheStage);
      const forcing = Promise.all(forced.map((id) => this.materialize(id)));
      forcing.catch(() => undefined); // awaited below
      const roots = await Promise.all(
        this.graph.roots.map(async (root) => {
          if (!root) return { key: null, result: { snapshot: null, layers: [] } as VertexResult };
          const key = await this.key(root.vertex);
          let result = await this.materialize(root.vertex);
          if (this.opts.materializeRoot) result = await this.ready(root.vertex, result);
          return { key, result };
        }),
      );
      await forcing;
      return this.finish(roots);
    } catch (err) {
      this.abortAll(err);
      // Let every running step observe the abort and clean up before we report.
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      // Nothing is left looking busy in the final progress frame.
      for (const [id, st] of this.states) {
        if (st !== 'started') continue;
        this.states.set(id, 'done');
        this.opts.progress?.canceled(id, this.vertex(id).name);
      }
      throw this.wrap(this.firstError ?? err);
    }
  }

  private finish(roots: SolveRootsResult['roots']): SolveRootsResult {
    // Vertices never visited because a descendant hit the cache are cached too.
    for (const id of this.reachable()) {
      if (this.states.get(id) === 'done') continue;
      const v = this.vertex(id);
      this.opts.progress?.cached(id, v.name, this.inputIds(v));
      this.cached.add(id);
      this.states.set(id, 'done');
    }
    return { roots, keys: this.keys, cached: this.cached, executed: this.executed, results: this.results };
  }

  private reachable(): string[] {
    const seen = new Set<string>();
    const order: string[] = [];
    const visit = (id: string) => {
      if (seen.has(id)) return;
      seen.add(id);
      for (const r of this.vertex(id).inputs) visit(r.vertex);
      order.push(id);
    };
    for (const root of this.graph.roots) if (root) visit(root.vertex);
    return order;
  }

  private vertex(id: string): Vertex {
    const v = this.graph.vertices[id];
    if (!v) throw new ImgError(`build graph references unknown vertex ${id}`, { hint: 'this is a frontend bug; report it with the Dockerfile' });
    return v;
  }

  private executor(v: Vertex): Executor {
    const ex = (this.opts.executors as Record<string, Executor | undefined>)[v.kind];
    if (!ex) throw new ImgError(`no executor for ${v.kind} vertices`, { hint: `${v.kind} steps are not supported by this build` });
    return ex;
  }

  // Progress rows are per vertex (its id is known before its cache key).
  private progressId(v: Vertex): string {
    return v.id;
  }

  // The vertices it reads, each once (progress shows them as BuildKit's Vertex.inputs).
  private inputIds(v: Vertex): string[] {
    return [...new Set(v.inputs.map((r) => r.vertex))];
  }

  private logger(v: Vertex): VertexLogger {
    const p = this.opts.progress;
    const decoder = new StringDecoder('utf8');
    return {
      log: (data, stream = 1) => {
        const text = typeof data === 'string' ? data : decoder.write(Buffer.from(data));
        let tail = this.tails.get(v.id);
        if (!tail) this.tails.set(v.id, (tail = []));
        for (const line of text.split('\n')) {
          if (line === '') continue;
          tail.push(line);
          if (tail.length > TAIL) tail.shift();
        }
        p?.log(this.progressId(v), data, stream);
      },
      status: (sub, s) => {
        this.markStarted(v);
        p?.status(this.progressId(v), sub, s);
      },
    };
  }

  private markStarted(v: Vertex): void {
    if (this.states.has(v.id)) return;
    this.states.set(v.id, 'started');
    this.opts.progress?.started(this.progressId(v), v.name, this.inputIds(v));
  }

  private markDone(v: Vertex, how: 'completed' | 'cached'): void {
    if (this.states.get(v.id) === 'done') return;
    if (how === 'completed') this.markStarted(v);
    this.states.set(v.id, 'done');
    if (how === 'cached') {
      this.cached.add(v.id);
      this.opts.progress?.cached(this.progressId(v), v.name, this.inputIds(v));
    } else this.opts.progress?.completed(this.progressId(v), v.name, this.inputIds(v));
  }

  private useCache(v: Vertex): boolean {
    return !this.opts.noCache && !v.ignoreCache && !v.noCacheStage && this.opts.cache !== undefined;
  }

  // Phase 1: keys. Inputs' keys first (in parallel), then this vertex's content key.
  private key(id: string): Promise<string> {
    let p = this.keyMemo.get(id);
    if (!p) {
      p = (async () => {
        const v = this.vertex(id);
        const inputKeys = await Promise.all(v.inputs.map((r: Ref) => this.key(r.vertex)));
        const ex = this.executor(v);
        let content: string | undefined;
        if (ex.contentKey) {
          const got = await this.guard(v, () =>
            this.limiter.run(
              () =>
                ex.contentKey!(v, {
                  signal: this.signal,
                  progress: this.logger(v),
                  noCache: Boolean(this.opts.noCache || v.ignoreCache || v.noCacheStage),
                  inputVertices: v.inputs.map((r) => this.vertex(r.vertex)),
                }),
              this.signal,
            ),
          );
          if (typeof got === 'object' && got !== null) {
            content = got.content;
            for (const i of got.replaceInputs ?? []) inputKeys[i] = 'replaced';
          } else content = got;
        }
        const k = cacheKey(v, inputKeys, content);
        this.keys.set(id, k);
        return k;
      })();
      this.keyMemo.set(id, p);
      p.catch(() => undefined); // observed by whoever awaits it
    }
    return p;
  }

  // Phase 2: results, top-down; a hit stops the descent.
  private async materialize(id: string): Promise<VertexResult> {
    const v = this.vertex(id);
    const key = await this.key(id);
    let p = this.byKey.get(key);
    if (p) {
      // Another vertex with the same key: share its result, report it once it is there.
      const r = await p;
      if (!this.states.has(v.id) || this.states.get(v.id) === 'started') this.markDone(v, 'cached');
      this.results.set(id, r);
      return r;
    }
    p = this.compute(v, key);
    this.byKey.set(key, p);
    const r = await p;
    this.results.set(id, r);
    return r;
  }

  private async compute(v: Vertex, key: string): Promise<VertexResult> {
    if (this.useCache(v)) {
      const hit = await this.opts.cache!.get(key, v);
      if (hit) {
        this.markDone(v, 'cached');
        return hit;
      }
    }
    return this.execute(v, key);
  }

  // A result whose filesystem is here: a lazy hit (imported cache) is unpacked
  // once per key; when that fails, the step runs instead.
  private ready(id: string, r: VertexResult): Promise<VertexResult> {
    if (!r.lazy) return Promise.resolve(r);
    const v = this.vertex(id);
    const key = this.keys.get(id)!;
    let p = this.unlazied.get(key);
    if (!p) {
      p = this.unlazy(v, key, r);
      this.unlazied.set(key, p);
    }
    return p;
  }

  private async unlazy(v: Vertex, key: string, r: VertexResult): Promise<VertexResult> {
    const cache = this.opts.cache!;
    try {
      return await this.limiter.run(() => cache.materialize!(key, v, r, this.logger(v)), this.signal);
    } catch (err) {
      if (this.signal.aborted || isAbortError(err)) throw err;
      warn(`${v.name}: cannot use the imported cache (${(err as Error)?.message ?? String(err)}); running the step`);
      this.states.delete(v.id);
      this.cached.delete(v.id);
      return this.execute(v, key);
    }
  }

  private async execute(v: Vertex, key: string): Promise<VertexResult> {
    const cache = this.opts.cache;
    const inputs = await Promise.all(v.inputs.map(async (r) => this.ready(r.vertex, await this.materialize(r.vertex))));
    return this.guard(v, () =>
      this.limiter.run(async () => {
        this.signal.throwIfAborted();
        const lock = cache?.lock ? await cache.lock(key) : null;
        try {
          // Another process may have produced it while we waited for the lock.
          if (lock && this.useCache(v)) {
            const hit = await cache!.get(key, v);
            if (hit && !hit.lazy) {
              this.markDone(v, 'cached');
              return hit;
            }
          }
          this.signal.throwIfAborted();
          this.markStarted(v);
          this.executed.add(v.id);
          const ex = this.executor(v);
          const result = await ex.run(v, {
            key,
            inputs,
            inputVertices: v.inputs.map((r) => this.vertex(r.vertex)),
            signal: this.signal,
            progress: this.logger(v),
            noCache: Boolean(this.opts.noCache || v.ignoreCache || v.noCacheStage),
          });
          result.created ??= new Date().toISOString();
          // Recorded before it is shown DONE or handed on: a step the user saw finish
          // survives a kill (Ctrl-C, SIGKILL) of the build right after. Starting the
          // dependents while the record was written lost it when the kill came then.
          if (cache) await cache.put(key, v, result);
          this.markDone(v, 'completed');
          return result;
        } finally {
          await lock?.release();
        }
      }, this.signal),
    );
  }

  // Runs a vertex's work; its failure becomes the build's failure (once).
  private async guard<T>(v: Vertex, fn: () => Promise<T>): Promise<T> {
    const work = fn();
    this.inflight.add(work);
    try {
      return await work;
    } catch (err) {
      if (this.firstError === null && !(this.signal.aborted && isAbortError(err))) {
        this.firstError = new SolveError(v.name, err, this.tails.get(v.id) ?? [], v.location);
        this.opts.progress?.failed(this.progressId(v), v.name, (err as Error)?.message ?? String(err), this.inputIds(v));
        this.states.set(v.id, 'done');
        this.abortAll(err);
      } else if (this.states.get(v.id) === 'started') {
        this.states.set(v.id, 'done');
        this.opts.progress?.canceled(this.progressId(v), v.name);
      }
      throw err;
    } finally {
      this.inflight.delete(work);
    }
  }

  private abortAll(reason: unknown): void {
    if (!this.ac.signal.aborted) this.ac.abort(reason);
  }

  private wrap(err: unknown): unknown {
    if (err instanceof SolveError) return err;
    if (isAbortError(err) && this.opts.signal?.aborted) {
      return new AbortError('build canceled', { hint: 'the build was interrupted; run it again to continue from the cache' });
    }
    return err;
  }
}


