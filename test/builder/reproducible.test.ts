// SOURCE_DATE_EPOCH: two from-scratch builds of the same input give the same image digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, runImgRootless } from '../helpers/rootless';
import { setup, skip } from './helpers';

test('img build (rootless): SOURCE_DATE_EPOCH makes --no-cache rebuilds bit-identical', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nRUN echo $RANDOM$RANDOM > /dev/null && mkdir -p /out && echo fixed > /out/f\n', 'a.txt': 'A\n' });
  t.after(() => cleanup(e.root));
  const digests: string[] = [];
  for (const i of [1, 2]) {
    const meta = path.join(e.root, `meta${i}.json`);
    const r = await runImgRootless(['-s', e.state, 'build', '--no-cache', '--progress', 'plain', '--metadata-file', meta, '-t', `repro:${i}`, e.ctx], {
      env: { SOURCE_DATE_EPOCH: '1700000000' },
    });
    assert.equal(r.code, 0, r.stderr);
    digests.push(JSON.parse(fs.readFileSync(meta, 'utf8'))['containerimage.digest']);
  }
  assert.equal(digests[0], digests[1]);
});
