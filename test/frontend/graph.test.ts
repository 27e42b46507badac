// lib/graph: pure-TS sha256, canonical JSON, vertex ids, builder helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { canonicalJson, sha256Hex, vertexDigest } from '../../lib/graph/digest';
import { GraphBuilder, dependents, prune, topoOrder } from '../../lib/graph/builder';

test('sha256Hex matches node:crypto for strings and bytes of every padding length', () => {
  for (let n = 0; n < 200; n++) {
    const s = 'x'.repeat(n);
    assert.equal(sha256Hex(s), createHash('sha256').update(s).digest('hex'), `length ${n}`);
  }
  const bytes = randomBytes(100_003);
  assert.equal(sha256Hex(new Uint8Array(bytes)), createHash('sha256').update(bytes).digest('hex'));
  const uni = 'héllo wörld 😀 日本 \u{10FFFF}';
  assert.equal(sha256Hex(uni), createHash('sha256').update(uni, 'utf8').digest('hex'));
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('canonicalJson sorts keys, drops undefined members, keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: [3, { d: undefined, c: 'x' }], e: null }), '{"a":[3,{"c":"x"}],"b":1,"e":null}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
});

test('vertexDigest ignores name and proxyEnv, not the work', () => {
  const base = { kind: 'exec' as const, inputs: [], rootfs: -1, args: ['true'], env: [], cwd: '/', user: '', network: 'default' as const, security: 'sandbox' as const, mounts: [] };
  const a = vertexDigest(base);
  assert.match(a, /^sha256:[a-f0-9]{64}$/);
  assert.equal(vertexDigest({ ...base, proxyEnv: ['HTTP_PROXY=x'] }), a);
  assert.notEqual(vertexDigest({ ...base, args: ['false'] }), a);
  assert.notEqual(vertexDigest({ ...base, ignoreCache: true }), a);
});

test('GraphBuilder dedupes identical vertices; topoOrder puts inputs first; prune drops the unreachable', () => {
  const b = new GraphBuilder();
  const img = b.add({ kind: 'image', name: 'first name', inputs: [], ref: 'docker.io/library/busybox:latest' });
  const again = b.add({ kind: 'image', name: 'second name', inputs: [], ref: 'docker.io/library/busybox:latest' });
  assert.deepEqual(img, again);
  assert.equal(b.get(img.vertex)!.name, 'first name');
  const ctx = b.add({ kind: 'local', name: 'ctx', inputs: [], source: 'context' });
  const copy = b.add({ kind: 'file', name: 'copy', inputs: [img, ctx], base: 0, actions: [{ op: 'mkdir', path: '/x', mode: 0o755, makeParents: true, chown: undefined }] });
  assert.equal('chown' in (b.get(copy.vertex) as { actions: object[] }).actions[0], false, 'undefined members are dropped');
  const orphan = b.add({ kind: 'local', name: 'orphan', inputs: [], source: 'other' });
  const order = topoOrder(b.vertices, [copy.vertex]).map((v) => v.name);
  assert.equal(order.at(-1), 'copy');
  assert.deepEqual(order.slice(0, 2).sort(), ['ctx', 'first name']);
  const kept = prune(b.vertices, [copy.vertex]);
  assert.equal(kept[orphan.vertex], undefined);
  assert.equal(Object.keys(kept).length, 3);
  assert.deepEqual(dependents(kept).get(img.vertex), [copy.vertex]);
});

test('topoOrder handles deep chains without recursion limits', () => {
  const b = new GraphBuilder();
  let prev = b.add({ kind: 'image', name: 'base', inputs: [], ref: 'x' });
  for (let i = 0; i < 20_000; i++) {
    prev = b.add({ kind: 'exec', name: `run ${i}`, inputs: [prev], rootfs: 0, args: [String(i)], env: [], cwd: '/', user: '', network: 'default', security: 'sandbox', mounts: [] });
  }
  assert.equal(topoOrder(b.vertices, [prev.vertex]).length, 20_001);
});
