// Structural tests of the scheduler with fake executors doing real async work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { BuildGraph, ExecVertex, Vertex } from '../../lib/graph/types';
import { Progress, type ProgressEvent } from '../../lib/progress/events';
import { defaultConcurrency, solve, solveRoots, SolveError } from '../../lib/solver/scheduler';
import { UsageError } from '../../lib/util/errors';
import type { CacheBackend, Executors, VertexResult } from '../../lib/solver/types';

function vid(s: string): string {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`;
}

// Small DSL: node(name, ...inputs) → an exec vertex whose fake work is described by `behavior`.
function graphOf(spec: Record<string, string[]>, root: string): Pick<BuildGraph, 'vertices' | 'root'> {
  const vertices: Record<string, Vertex> = {};
  for (const [name, inputs] of Object.entries(spec)) {
    const v: ExecVertex = {
      id: vid(name),
      name,
      kind: 'exec',
      inputs: inputs.map((i) => ({ vertex: vid(i), output: 0 })),
      rootfs: inputs.length ? 0 : -1,
      args: [name],
      env: [],
      cwd: '/',
      user: 'root',
      network: 'none',
      security: 'sandbox',
      mounts: [],
    };
    vertices[v.id] = v;
  }
  return { vertices, root: { vertex: vid(root), output: 0 } };
}

interface Trace {
  events: string[];
  runs: Map<string, number>;
}

function fakeExec(trace: Trace, behavior: (name: string, signal: AbortSignal) => Promise<void>): Executors {
  return {
    exec: {
      async run(v, ctx) {
        trace.runs.set(v.name, (trace.runs.get(v.name) ?? 0) + 1);
        trace.events.push(`start ${v.name}`);
        ctx.progress.log(`output of ${v.name}\n`);
        await behavior(v.name, ctx.signal);
        trace.events.push(`end ${v.name}`);
        return { snapshot: `snap-${v.name}`, layers: [...(ctx.inputs[0]?.layers ?? []), { snapshot: `snap-${v.name}` }] };
      },
    },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      },
      { once: true },
    );
  });
}

function memoryCache(): CacheBackend & { map: Map<string, VertexResult> } {
  const map = new Map<string, VertexResult>();
  return {
    map,
    async get(key) {
      return map.get(key) ?? null;
    },
    async put(key, _v, r) {
      map.set(key, r);
    },
  };
}

const diamond = { base: [], left: ['base'], right: ['base'], top: ['left', 'right'] };

test('independent vertices run in parallel: both start before either ends', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  const g = graphOf(diamond, 'top');
  await solve(g, { executors: fakeExec(trace, (_n, s) => sleep(30, s)), concurrency: 4 });
  const i = (e: string) => trace.events.indexOf(e);
  assert.ok(i('start left') < i('end right') && i('start right') < i('end left'), trace.events.join(', '));
  assert.ok(i('end base') < i('start left') && i('end left') < i('start top') && i('end right') < i('start top'));
});

test('the concurrency limit holds: with limit 1 no two steps overlap', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  const g = graphOf(diamond, 'top');
  let active = 0;
  let max = 0;
  await solve(g, {
    executors: fakeExec(trace, async (_n, s) => {
      max = Math.max(max, ++active);
      await sleep(10, s);
      active--;
    }),
    concurrency: 1,
  });
  assert.equal(max, 1);
  assert.equal(trace.runs.size, 4);
});

// BuildKit caps no steps by default; a core-count cap made four 2 s stages take 4 s on two cores.
test('steps are not capped by the core count: eight waiting stages all start before any ends', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  const stages = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`s${i}`, [] as string[]]));
  const g = graphOf({ ...stages, final: Object.keys(stages) }, 'final');
  const prev = process.env.IMG_MAX_PARALLELISM;
  delete process.env.IMG_MAX_PARALLELISM;
  try {
    await solve(g, { executors: fakeExec(trace, (_n, s) => sleep(30, s)) });
  } finally {
    if (prev !== undefined) process.env.IMG_MAX_PARALLELISM = prev;
  }
  const firstEnd = trace.events.findIndex((e) => e.startsWith('end '));
  assert.equal(trace.events.slice(0, firstEnd).filter((e) => e.startsWith('start s')).length, 8, trace.events.join(', '));
});

test('IMG_MAX_PARALLELISM caps steps; a value that is not a positive whole number is a usage error naming it', () => {
  assert.equal(defaultConcurrency({}), Infinity);
  assert.equal(defaultConcurrency({ IMG_MAX_PARALLELISM: '3' }), 3);
  for (const bad of ['0', '-2', '1.5', 'four']) {
    assert.throws(
      () => defaultConcurrency({ IMG_MAX_PARALLELISM: bad }),
      (e: unknown) => e instanceof UsageError && e.message.includes(`IMG_MAX_PARALLELISM=${bad}`),
    );
  }
});

test('a vertex needed by two branches runs once', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  const g = graphOf(diamond, 'top');
  const res = await solve(g, { executors: fakeExec(trace, (_n, s) => sleep(5, s)), concurrency: 4 });
  assert.equal(trace.runs.get('base'), 1);
  assert.deepEqual(
    res.result.layers.map((l) => l.snapshot),
    ['snap-base', 'snap-left', 'snap-top'],
  );
});

test('several roots (a multi-platform build) share their common vertices and run side by side', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  // Two platforms' graphs merged: "tools" (a build-platform stage) is in both; each has its own top.
  const amd = graphOf({ tools: [], amd64: ['tools'] }, 'amd64');
  const arm = graphOf({ tools: [], arm64: ['tools'] }, 'arm64');
  const res = await solveRoots({ ...amd.vertices, ...arm.vertices }, [amd.root, arm.root, null], {
    executors: fakeExec(trace, (_n, s) => sleep(20, s)),
    concurrency: 4,
  });
  assert.equal(trace.runs.get('tools'), 1, 'the shared vertex ran once');
  const i = (e: string) => trace.events.indexOf(e);
  assert.ok(i('start amd64') < i('end arm64') && i('start arm64') < i('end amd64'), trace.events.join(', '));
  assert.deepEqual(
    res.roots.map((r) => r.result.layers.map((l) => l.snapshot)),
    [['snap-tools', 'snap-amd64'], ['snap-tools', 'snap-arm64'], []],
  );
  assert.equal(res.roots[2].key, null, 'a null root (FROM scratch, nothing added) has no key');
  assert.equal(res.executed.size, 3);
});

test('a failure cancels running and pending steps and names the failing step with its output', async () => {
  const trace: Trace = { events: [], runs: new Map() };
  const g = graphOf({ a: [], slow: [], after: ['a', 'slow'] }, 'after');
  const events: ProgressEvent[] = [];
  const progress = new Progress();
  progress.on((e) => events.push(e));
  let slowAborted = false;
  const err = await solve(g, {
    progress,
    concurrency: 4,
    executors: fakeExec(trace, async (name, signal) => {
      if (name === 'a') {
        await sleep(20);
        throw new Error('process "/bin/sh -c false" did not complete successfully: exit code: 1');
      }
      try {
        await sleep(5000, signal);
      } catch (e) {
        slowAborted = true;
        throw e;
      }
    }),
  }).then(
    () => assert.fail('solve should fail'),
    (e) => e,
  );
  assert.ok(err instanceof SolveError);
  assert.equal(err.message, 'failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1');
  assert.equal(err.vertexName, 'a');
  assert.deepEqual(err.tail, ['output of a']);
  assert.ok(slowAborted, 'the running step saw the abort before solve returned');
  assert.equal(trace.runs.get('after'), undefined);
  const states = events.filter((e) => e.type === 'vertex').map((e) => `${(e as { name: string }).name}:${(e as { state: string }).state}`);
  assert.ok(states.includes('a:error') && states.includes('slow:canceled'), states.join(' '));
});

test('cache hits skip the work; a hit at the root needs none of its inputs', async () => {
  const cache = memoryCache();
  const g = graphOf(diamond, 'top');
  const t1: Trace = { events: [], runs: new Map() };
  await solve(g, { executors: fakeExec(t1, (_n, s) => sleep(1, s)), cache });
  assert.equal(t1.runs.size, 4);
  const t2: Trace = { events: [], runs: new Map() };
  const events: ProgressEvent[] = [];
  const progress = new Progress();
  progress.on((e) => events.push(e));
  const res = await solve(g, { executors: fakeExec(t2, (_n, s) => sleep(1, s)), cache, progress });
  assert.equal(t2.runs.size, 0);
  assert.equal(res.cached.size, 4, 'every step is reported CACHED');
  assert.equal(events.filter((e) => e.type === 'vertex' && e.state === 'cached').length, 4);
  assert.equal(res.result.snapshot, 'snap-top');
  // --no-cache ignores the hits.
  const t3: Trace = { events: [], runs: new Map() };
  await solve(g, { executors: fakeExec(t3, (_n, s) => sleep(1, s)), cache, noCache: true });
  assert.equal(t3.runs.size, 4);
});

test('a changed content key reruns that vertex and its dependents only', async () => {
  const cache = memoryCache();
  const g = graphOf({ base: [], ctx: [], copy: ['base', 'ctx'], other: ['base'], top: ['copy', 'other'] }, 'top');
  let content = 'v1';
  const mk = (t: Trace): Executors => {
    const ex = fakeExec(t, async () => {});
    return {
      exec: {
        contentKey: async (v) => (v.name === 'ctx' ? content : undefined),
        run: ex.exec!.run,
      },
    };
  };
  await solve(g, { executors: mk({ events: [], runs: new Map() }), cache });
  content = 'v2';
  const t: Trace = { events: [], runs: new Map() };
  await solve(g, { executors: mk(t), cache });
  assert.deepEqual([...t.runs.keys()].sort(), ['copy', 'ctx', 'top']);
});

// An imported cache as the scheduler sees it: lazy hits, materialized on demand.
function importedCache(lazy: Map<string, VertexResult>, fail = new Set<string>()): CacheBackend & { materialized: string[] } {
  const local = memoryCache();
  const materialized: string[] = [];
  return {
    materialized,
    async get(key, v) {
      return (await local.get(key, v)) ?? lazy.get(key) ?? null;
    },
    put: local.put,
    async materialize(key, v, r) {
      materialized.push(v.name);
      if (fail.has(v.name)) throw new Error(`blob of ${v.name} is gone`);
      const done = { ...r, lazy: false, snapshot: `unpacked-${v.name}` };
      await local.put(key, v, done);
      return done;
    },
  };
}

test('lazy hits (an imported cache) are unpacked only when a step that runs builds on them, once per key', async () => {
  const g = graphOf({ base: [], mid: ['base'], top: ['mid'] }, 'top');
  const t0: Trace = { events: [], runs: new Map() };
  const first = memoryCache();
  const res0 = await solve(g, { executors: fakeExec(t0, async () => {}), cache: first });
  const lazy = new Map([...first.map].map(([k, r]) => [k, { ...r, snapshot: null, lazy: true }]));

  // Everything hits: nothing is unpacked, unless the caller wants the root's filesystem.
  let cache = importedCache(lazy);
  const t1: Trace = { events: [], runs: new Map() };
  let res = await solve(g, { executors: fakeExec(t1, async () => {}), cache });
  assert.equal(t1.runs.size, 0);
  assert.deepEqual(cache.materialized, []);
  assert.equal(res.result.lazy, true);
  res = await solve(g, { executors: fakeExec(t1, async () => {}), cache: importedCache(lazy), materializeRoot: true });
  assert.equal(res.result.snapshot, 'unpacked-top');

  // top misses (its key is gone from the import): only mid, its input, is unpacked.
  cache = importedCache(new Map([...lazy].filter(([k]) => k !== res0.keys.get(vid('top')))));
  const t2: Trace = { events: [], runs: new Map() };
  res = await solve(g, { executors: fakeExec(t2, async () => {}), cache });
  assert.deepEqual([...t2.runs.keys()], ['top']);
  assert.deepEqual(cache.materialized, ['mid']);
  assert.equal(res.result.snapshot, 'snap-top');

  // mid's layers cannot be had: mid runs instead (on base, unpacked), and top after it.
  cache = importedCache(new Map([...lazy].filter(([k]) => k !== res0.keys.get(vid('top')))), new Set(['mid']));
  const t3: Trace = { events: [], runs: new Map() };
  res = await solve(g, { executors: fakeExec(t3, async () => {}), cache });
  assert.deepEqual([...t3.runs.keys()], ['mid', 'top']);
  assert.deepEqual(cache.materialized, ['mid', 'base']);
});
