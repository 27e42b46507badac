// A layer cannot steer the overlay backends (issue 13.1): xattrs in overlayfs's own
// namespaces (user.overlay.opaque, .redirect, .origin, .metacopy, and already-escaped
// user.overlay.overlay.*) are content like any other. Each backend unpacks the same
// crafted layers (written with tar-stream, not img's tar codec) as the unprivileged
// user: nothing lower is hidden by a layer's "opaque" xattr, and every layer written
// back from its snapshot carries exactly the entries and xattrs it came with.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tarOf, type FixtureEntry } from '../fixtures/layers';
import { cleanup, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import type { LayerEntry, StackReport } from './scenarios/layers';

const BACKENDS = ['overlayfs', 'fuse-overlayfs', 'native'] as const;
const T = 1_600_000_000;
const x = (xs: Record<string, string>) => Object.fromEntries(Object.entries(xs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));

// Bottom layer: directories with contents an obeyed opaque/redirect xattr would hide.
const LAYER1: FixtureEntry[] = [
  { name: 'd/', type: 'directory', mtime: T },
  { name: 'd/old', body: 'old', mtime: T },
  { name: 'r/', type: 'directory', mtime: T },
  { name: 'r/f', body: 'f', mtime: T },
];
// Top layer: only new or changed paths, so every backend's diff holds exactly these.
const LAYER2: FixtureEntry[] = [
  { name: 'd/', type: 'directory', mtime: T + 1, pax: x({ 'user.overlay.opaque': 'y', 'user.note': 'd' }) },
  { name: 'd/new', body: 'new', mtime: T + 1, pax: x({ 'user.overlay.metacopy': '', 'user.overlay.origin': 'o\u0001rigin', 'user.overlay.overlay.opaque': 'y', 'user.plain': '1' }) },
  { name: 'e/', type: 'directory', mtime: T + 1, pax: x({ 'user.overlay.redirect': '/r', 'user.overlay.opaque': 'x' }) },
  { name: 'e/g', body: 'g', mtime: T + 1 },
];

describe('overlay xattrs in layers are content, not instructions (rootless)', { skip: skipUnlessRootless() }, () => {
  const dir = tempDir('img-ovx-');
  const results = new Map<string, StackReport>();
  let want: LayerEntry[][];

  before(async () => {
    const files = [path.join(dir, 'l1.tar'), path.join(dir, 'l2.tar')];
    fs.writeFileSync(files[0], await tarOf(LAYER1));
    fs.writeFileSync(files[1], await tarOf(LAYER2));
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ stacks: [files], roundTrip: true }));
    want = [LAYER1, LAYER2].map((layer) =>
      layer.map((e) => {
        const xs = Object.entries(e.pax ?? {}).map(([k, v]) => [k.slice('SCHILY.xattr.'.length), Buffer.from(v).toString('hex')]);
        const w: LayerEntry = { name: e.name, type: e.type ?? 'file', mode: e.type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: e.mtime! };
        if (!e.type) w.sha = createHash('sha256').update(e.body!).digest('hex').slice(0, 12);
        if (xs.length) w.xattrs = Object.fromEntries(xs);
        return w;
      }),
    );
  });
  after(() => cleanup(dir));

  for (const backend of BACKENDS) {
    test(`${backend}: unpacked, the merged tree hides nothing; each layer is written back as it came`, async () => {
      const state = path.join(dir, `state-${backend}`);
      fs.mkdirSync(state);
      fs.chownSync(state, fs.statSync(dir).uid, fs.statSync(dir).gid);
      const res = await runScriptRootless('test/snapshot/scenarios/layers.ts', [state, backend, path.join(dir, 'spec.json')], { timeoutMs: 120_000 });
      assert.equal(res.code, 0, res.stderr);
      const r: StackReport = JSON.parse(res.stdout.trim().split('\n').at(-1)!).reports[0];
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      results.set(backend, r);
      const tree = r.tree!;
      // An obeyed opaque xattr on d would hide d/old; an obeyed redirect on e would show r's files there.
      assert.deepEqual(
        Object.keys(tree).sort(),
        ['/', 'd', 'd/new', 'd/old', 'e', 'e/g', 'r', 'r/f'],
      );
      assert.match(tree['d/old'], /^file 644 0:0 3 /);
      assert.deepEqual(r.layers, want);
    });
  }

  test('the merged views agree, xattrs included', () => {
    const native = results.get('native');
    assert.ok(native, 'the native backend ran');
    // Native shows the layer's xattrs as stored; kernel overlayfs (Linux ≥ 6.7) unescapes
    // them in its merged view, so RUN and exports see the same names.
    assert.match(native.tree!['d/new'], /\[user\.overlay\.metacopy=,user\.overlay\.origin=6f01726967696e,user\.overlay\.overlay\.opaque=79,user\.plain=31\]$/);
    const kernel = results.get('overlayfs');
    if (kernel) assert.deepEqual(kernel.tree, native.tree);
    // fuse-overlayfs keeps every name in those namespaces out of its merged view (the
    // layers still hold them: the round trip above); all else is the same tree.
    const fuse = results.get('fuse-overlayfs');
    if (fuse) {
      const hidden = (d: string) => d.replace(/user\.overlay\.[^=]*=[0-9a-f]*,?/g, '').replace(/,?\]$/, ']').replace(/ \[\]$/, '');
      assert.deepEqual(fuse.tree, Object.fromEntries(Object.entries(native.tree!).map(([k, v]) => [k, hidden(v)])));
    }
  });
});
