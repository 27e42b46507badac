import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { LayerBlobMemo } from '../../lib/export/layer-memo';
import { CacheStore } from '../../lib/solver/cache';
import { ChecksumCache, includeMatcher, scanContext, SELECT_ALL } from '../../lib/solver/checksum';

const blob = (n: number) => ({
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as const,
  diffId: `sha256:${'d'.repeat(64)}` as const,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  size: 10,
});

test('cache records round-trip, register GC roots, and are misses when their snapshot is gone', async (t) => {
  const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cache-'));
  t.after(() => fsp.rm(state, { recursive: true, force: true }));
  const snaps = new Set(['s1', 's2']);
  const memo = new LayerBlobMemo(state);
  const store = new CacheStore(state, { snapshotExists: async (id) => snaps.has(id), layerBlob: (s) => memo.get(s) });
  const key = `sha256:${'a'.repeat(64)}`;
  assert.equal(await store.get(key), null);
  await store.put(key, { name: 'RUN x', kind: 'exec' }, { snapshot: 's2', layers: [{ blob: blob(1) }, { snapshot: 's2' }] });
  const hit = await store.get(key);
  assert.ok(hit && !Number.isNaN(Date.parse(hit.created!)), 'the record remembers when it was made');
  assert.deepEqual({ ...hit, created: undefined }, { snapshot: 's2', layers: [{ snapshot: undefined, blob: blob(1) }, { snapshot: 's2', blob: undefined }], meta: undefined, created: undefined });
  // The exporter remembers the blob made from s2; later hits carry it.
  await memo.put('s2', blob(2));
  assert.deepEqual((await store.get(key))!.layers[1].blob, blob(2));
  const roots = await fsp.readdir(path.join(state, 'cache', 'roots'));
  const digests = roots.flatMap((f) => JSON.parse(fs.readFileSync(path.join(state, 'cache', 'roots', f), 'utf8')).digests);
  assert.deepEqual(digests.sort(), [blob(1).digest, blob(2).digest].sort());
  snaps.delete('s2');
  assert.equal(await store.get(key), null);
  // No temp files left behind.
  assert.deepEqual((await fsp.readdir(path.join(state, 'cache', 'records'))).filter((f) => f.endsWith('.tmp')), []);
});

test('context checksums cover exactly the selected files and reuse the stat cache', async (t) => {
  const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-sum-'));
  const ctx = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-ctx-'));
  t.after(async () => {
    await fsp.rm(state, { recursive: true, force: true });
    await fsp.rm(ctx, { recursive: true, force: true });
  });
  await fsp.mkdir(path.join(ctx, 'src/sub'), { recursive: true });
  await fsp.writeFile(path.join(ctx, 'a.txt'), 'A');
  await fsp.writeFile(path.join(ctx, 'src/main.go'), 'package main');
  await fsp.writeFile(path.join(ctx, 'src/sub/x.go'), 'x');
  await fsp.symlink('a.txt', path.join(ctx, 'link'));

  const c1 = await ChecksumCache.open(state, ctx);
  const all = await scanContext(ctx, SELECT_ALL, c1);
  assert.deepEqual((await all.toArray()).map((f) => `${f.type}:${f.rel}`), ['file:a.txt', 'symlink:link', 'dir:src', 'file:src/main.go', 'dir:src/sub', 'file:src/sub/x.go']);
  assert.equal(c1.misses, 3);

  const c2 = await ChecksumCache.open(state, ctx);
  const again = await scanContext(ctx, SELECT_ALL, c2);
  assert.equal(again.digest, all.digest);
  assert.equal(c2.hits, 3, 'unchanged files are not re-read');
  assert.equal(c2.misses, 0);

  // Touch without change: re-hashed, same digest. Change: new digest.
  const later = new Date(Date.now() + 5000);
  await fsp.utimes(path.join(ctx, 'a.txt'), later, later);
  const c3 = await ChecksumCache.open(state, ctx);
  assert.equal((await scanContext(ctx, SELECT_ALL, c3)).digest, all.digest);
  assert.equal(c3.misses, 1);

  // Include patterns: only src/*.go (and dirs on the way).
  const only = { ...SELECT_ALL, included: includeMatcher(['src/*.go']) };
  const sel = await scanContext(ctx, only, null);
  assert.deepEqual((await sel.toArray()).map((f) => f.rel), ['src', 'src/main.go']);
  await fsp.writeFile(path.join(ctx, 'a.txt'), 'changed');
  assert.equal((await scanContext(ctx, only, null)).digest, sel.digest, 'unselected changes do not matter');
  assert.notEqual((await scanContext(ctx, SELECT_ALL, null)).digest, all.digest);

  // Include patterns are filepath.Match globs: [!x] has the members '!' and 'x' (util/glob.ts).
  await fsp.writeFile(path.join(ctx, '!.txt'), '!');
  const bang = await scanContext(ctx, { ...SELECT_ALL, included: includeMatcher(['[!a].txt']) }, null);
  assert.deepEqual((await bang.toArray()).map((f) => f.rel), ['!.txt', 'a.txt']);
  const caret = await scanContext(ctx, { ...SELECT_ALL, included: includeMatcher(['[^a].txt']) }, null);
  assert.deepEqual((await caret.toArray()).map((f) => f.rel), ['!.txt']);
  assert.throws(() => includeMatcher(['src/[a']), /syntax error in pattern "\[a"/);
  await fsp.rm(path.join(ctx, '!.txt'));

  // Exclusions (.dockerignore verdicts).
  const ex = { excluded: (rel: string) => rel === 'src/sub' || rel === 'link', mayReinclude: () => false };
  assert.deepEqual((await (await scanContext(ctx, ex, null)).toArray()).map((f) => f.rel), ['a.txt', 'src', 'src/main.go']);
});

test('two solvers on one state dir (separate cache stores, real flock) compute each key once', async (t) => {
  const { lockFile } = await import('../../lib/host/index');
  const { solve } = await import('../../lib/solver/scheduler');
  const { createHash } = await import('node:crypto');
  const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cache-lock-'));
  t.after(() => fsp.rm(state, { recursive: true, force: true }));
  const id = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  const mk = (name: string, inputs: string[]) => ({
    id: id(name),
    name,
    kind: 'exec' as const,
    inputs: inputs.map((i) => ({ vertex: id(i), output: 0 })),
    rootfs: inputs.length ? 0 : -1,
    args: [name],
    env: [],
    cwd: '/',
    user: '',
    network: 'none' as const,
    security: 'sandbox' as const,
    mounts: [],
  });
  const vs = [mk('a', []), mk('b', ['a']), mk('c', ['b'])];
  const graph = { vertices: Object.fromEntries(vs.map((v) => [v.id, v])), root: { vertex: id('c'), output: 0 } };
  const runs: string[] = [];
  const executors = {
    exec: {
      run: async (v: { name: string }) => {
        runs.push(v.name);
        await new Promise((r) => setTimeout(r, 50));
        return { snapshot: `snap-${v.name}`, layers: [] };
      },
    },
  };
  const store = () => new CacheStore(state, { snapshotExists: async () => true, lockFile });
  const [r1, r2] = await Promise.all([solve(graph, { executors, cache: store() }), solve(graph, { executors, cache: store() })]);
  assert.deepEqual(runs.sort(), ['a', 'b', 'c'], 'every key computed exactly once across both solvers');
  assert.equal(r1.result.snapshot, 'snap-c');
  assert.equal(r2.result.snapshot, 'snap-c');
});
