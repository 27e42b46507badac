// A fully cached build needs no snapshot, so it finishes without re-executing in
// a user namespace (lib/builder/probe.ts); anything that needs one still gets it,
// and the output of the abandoned probe never reaches the user.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip, storedConfig, type Env } from './helpers';

const DOCKERFILE = 'FROM busybox\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy.txt\n';
const ENTERED = /entering a user namespace/;

describe('builds start outside the user namespace', { skip }, () => {
  const envs: Env[] = [];
  after(async () => {
    for (const e of envs) await cleanup(e.root);
  });

  test('a cold build re-executes in the namespace once; a cached build never enters it', async () => {
    const e = await setup({ Dockerfile: DOCKERFILE, 'app.txt': 'v1\n' });
    envs.push(e);
    const first = await build(e, ['--debug', '-t', 'probe:1', e.ctx]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, ENTERED);
    // Whatever the probe printed before giving up was dropped: each line appears once.
    assert.equal(first.stdout.match(/^Building /gm)?.length, 1, first.stdout);
    assert.equal(first.stderr.match(/^#\d+ \S* ?COPY app\.txt \/app\.txt$/gm)?.length, 1, first.stderr);

    const second = await build(e, ['--debug', '-t', 'probe:1', e.ctx]);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, ENTERED);
    assert.match(second.stderr, /CACHED/);
    assert.match(second.stdout, /Successfully built docker\.io\/library\/probe:1/);
    const { manifest } = await storedConfig(e, 'docker.io/library/probe:1');
    assert.equal(manifest.layers.length, 3);
  });

  test('a changed context file and a filesystem export still run in the namespace', async () => {
    const e = await setup({ Dockerfile: DOCKERFILE, 'app.txt': 'v1\n' });
    envs.push(e);
    assert.equal((await build(e, ['-t', 'probe:2', e.ctx])).code, 0);
    fs.writeFileSync(path.join(e.ctx, 'app.txt'), 'v2\n');
    const touched = await build(e, ['--debug', '-t', 'probe:2', e.ctx]);
    assert.equal(touched.code, 0, touched.stderr);
    assert.match(touched.stderr, ENTERED);
    assert.equal(touched.stderr.match(/^#\d+ \S* ?COPY app\.txt \/app\.txt$/gm)?.length, 1, touched.stderr);
    const local = await build(e, ['--debug', '-o', `type=local,dest=${e.root}/out`, e.ctx]);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stderr, ENTERED);
  });
});
