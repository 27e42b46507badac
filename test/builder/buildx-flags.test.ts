// buildx flags about what a build keeps and writes: -o type=cacheonly,
// --no-cache-filter, --annotation. As the unprivileged test user, real runc.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runImgRootless } from '../helpers/rootless';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip, stepStates, steps } from './helpers';

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
