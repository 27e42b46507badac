// buildx flags about what a build keeps and writes: -o type=cacheonly,
// --no-cache-filter, --annotation. As the unprivileged test user, real runc.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cleanup, runImgRootless } from '../helpers/rootless';
import { build, setup, skip, stepStates, steps, storedConfig } from './helpers';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import type { Index, Manifest } from '../../lib/images/types';

test('-o type=cacheonly builds and exports nothing; the next build finds its steps cached; --cache-to still exports', { skip }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN echo made > /made\n' });
  t.after(() => cleanup(e.root));
  const cacheDir = path.join(e.root, 'cache');
  const r = await build(e, ['-t', 'co:1', '-o', 'type=cacheonly', '--cache-to', `type=local,dest=${cacheDir}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Successfully built: cache only, no output written \(cache exported\)\n$/);
  assert.equal(steps(stepStates(r.stderr)).find(([n]) => n.includes('RUN'))?.[1], 'DONE');
  assert.doesNotMatch(r.stderr, /exporting to image|naming to/);
  const ls = await runImgRootless(['-s', e.state, 'ls']);
  assert.doesNotMatch(ls.stdout, /co:1/, 'no image was stored');
  assert.ok(fs.existsSync(path.join(cacheDir, 'index.json')), '--cache-to wrote its layout');

  const again = await build(e, ['-t', 'co:2', e.ctx]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(steps(stepStates(again.stderr)).find(([n]) => n.includes('RUN'))?.[1], 'CACHED');

  const bad = await build(e, ['-o', 'type=cacheonly,dest=x', e.ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--output type=cacheonly does not support the option "dest"/);
});

test('--no-cache-filter runs the named stages\' steps again and takes the others from cache', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox AS deps',
      'RUN echo deps > /deps',
      'FROM busybox AS Build',
      'COPY --from=deps /deps /deps',
      'RUN echo build > /build',
      'FROM busybox',
      'COPY --from=Build /build /build',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const first = await build(e, ['-t', 'ncf:1', e.ctx]);
  assert.equal(first.code, 0, first.stderr);
  // Stage names compare without case, as BuildKit; comma lists and repeats both work.
  const r = await build(e, ['-t', 'ncf:2', '--no-cache-filter', 'build', '--no-cache-filter', 'nosuch', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const states = new Map(steps(stepStates(r.stderr)));
  const state = (prefix: string) => [...states].find(([n]) => n.startsWith(prefix))?.[1];
  assert.equal(state('[deps 2/2] RUN'), 'CACHED');
  assert.equal(state('[build 2/3] COPY'), 'DONE');
  assert.equal(state('[build 3/3] RUN'), 'DONE');
  // The last stage is not named: its COPY is the same work on the same input, cached.
  assert.equal(state('[stage-2 2/2] COPY'), 'CACHED');
  // BuildKit ignores a name no stage has; img builds and warns.
  assert.match(r.stderr, /--no-cache-filter: no stage named "nosuch" in Dockerfile/);
  // The fresh results replaced the cached ones: a plain build after it is all cached.
  const again = await build(e, ['-t', 'ncf:3', e.ctx]);
  assert.equal(again.code, 0, again.stderr);
  for (const [n, s] of steps(stepStates(again.stderr))) if (!n.includes('FROM')) assert.equal(s, 'CACHED', n);
});

test('--annotation and -o annotation.*: manifest and index annotations in the stored JSON; what img cannot place is refused', { skip }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a\n' });
  t.after(() => cleanup(e.root));
  const content = new ContentStore(e.state);
  // One platform: every --annotation without a type, and annotation.* of -o, go on the manifest.
  const one = await build(e, ['-t', 'ann:1', '--annotation', 'org.opencontainers.image.title=one', '--annotation', 'manifest:com.example.a=1', e.ctx]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual((await storedConfig(e, 'docker.io/library/ann:1')).manifest.annotations, { 'org.opencontainers.image.title': 'one', 'com.example.a': '1' });
  const viaOutput = await build(e, ['-o', 'type=image,name=ann:2,annotation.com.example.b=2,annotation-manifest.com.example.c=3', e.ctx]);
  assert.equal(viaOutput.code, 0, viaOutput.stderr);
  assert.deepEqual((await storedConfig(e, 'docker.io/library/ann:2')).manifest.annotations, { 'com.example.b': '2', 'com.example.c': '3' });

  // One platform's manifest-descriptor annotations annotate the image's descriptor (BuildKit's top descriptor).
  const desc = await build(e, ['-t', 'ann:d', '--annotation', 'manifest-descriptor:com.example.d=1', e.ctx]);
  assert.equal(desc.code, 0, desc.stderr);
  assert.deepEqual((await new ImageStore(e.state).get('docker.io/library/ann:d'))!.target.annotations, { 'com.example.d': '1' });

  // Several platforms: index annotations on the index, manifest ones on each (or the named) platform's
  // manifest, manifest-descriptor ones on the index's entries.
  const multi = await build(e, [
    '--platform', 'linux/amd64,linux/arm64', '-t', 'ann:3',
    '--annotation', 'index,manifest:com.example.both=x',
    '--annotation', 'manifest[linux/arm64]:com.example.arm=y',
    '--annotation', 'manifest-descriptor:com.example.desc=z',
    e.ctx,
  ]);
  assert.equal(multi.code, 0, multi.stderr);
  const rec = await new ImageStore(e.state).get('docker.io/library/ann:3');
  const index = await content.readJson<Index>(rec!.target.digest);
  assert.deepEqual(index.annotations, { 'com.example.both': 'x' });
  for (const d of index.manifests) {
    assert.deepEqual(d.annotations, { 'com.example.desc': 'z' });
    const m = await content.readJson<Manifest>(d.digest);
    const want: Record<string, string> = { 'com.example.both': 'x' };
    if (d.platform?.architecture === 'arm64') want['com.example.arm'] = 'y';
    assert.deepEqual(m.annotations, want, d.platform?.architecture);
  }

  for (const [args, want] of [
    [['--annotation', 'index:k=v'], /index annotations not supported for single platform export/],
    [['--annotation', 'bogus:k=v'], /unknown annotation type "bogus"/],
    [['--annotation', 'novalue'], /invalid annotation "novalue", expected key=value/],
    [['-o', 'type=image,name=x,annotation-bogus.k=v'], /unrecognized annotation type bogus/],
  ] as const) {
    const r = await build(e, ['-t', 'ann:bad', ...args, e.ctx]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, want, args.join(' '));
  }
});
