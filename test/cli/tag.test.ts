import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../lib/images/store';
import { runImg } from '../helpers/cli';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';

let state: string;
let img: BuiltImage;
before(async () => {
  state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-tag-'));
  img = await makeBusyboxImage();
  await img.writeToStore(state, 'jess/thing');
});
after(() => fsp.rm(state, { recursive: true, force: true }));

describe('img tag', () => {
  it('names the same target under a second name', async () => {
    const r = await runImg(['--state', state, 'tag', 'jess/thing', 'jess/otherthing']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Successfully tagged jess/thing as jess/otherthing\n');
    const r2 = await runImg(['--state', state, 'tag', 'docker.io/jess/thing:latest', 'localhost:5000/x:v2']);
    assert.equal(r2.code, 0, r2.stderr);
    const recs = await new ImageStore(state).list();
    assert.deepEqual(
      recs.map((x) => [x.name, x.target.digest]),
      [
        ['docker.io/jess/otherthing:latest', img.manifest.digest],
        ['docker.io/jess/thing:latest', img.manifest.digest],
        ['localhost:5000/x:v2', img.manifest.digest],
      ],
    );
    const ls = await runImg(['--state', state, 'ls']);
    assert.deepEqual(ls.stdout.split('\n').slice(1, -1).map((l) => l.split('\t')[0]), ['jess/otherthing:latest', 'jess/thing:latest', 'localhost:5000/x:v2']);
  });

  it('fails clearly for a missing source or an invalid target', async () => {
    const r = await runImg(['--state', state, 'tag', 'nothere', 'x']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^Error: No such image: nothere — /);
    const r2 = await runImg(['--state', state, 'tag', 'jess/thing', 'Bad/Name']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /invalid reference "Bad\/Name"/);
    // --debug adds the error's stable code under the same first line.
    const r2d = await runImg(['--debug', '--state', state, 'tag', 'jess/thing', 'Bad/Name']);
    assert.equal(r2d.stderr.split('\n')[0], r2.stderr.split('\n')[0]);
    assert.match(r2d.stderr, /^code: IMG_ERR_USAGE$/m);
    const r3 = await runImg(['--state', state, 'tag', 'jess/thing']);
    assert.notEqual(r3.code, 0);
  });
});
