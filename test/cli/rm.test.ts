import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { runImg } from '../helpers/cli';
import { makeBusyboxImage } from '../fixtures/images';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));

async function blobs(state: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of new ContentStore(state).list()) out.push(b.digest);
  return out.sort();
}

describe('img rm', () => {
  it('untags, then GC removes what no other image uses and keeps shared blobs', async () => {
    const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-rm-'));
    dirs.push(state);
    // Same layer, different config: the layer is shared by both images.
    const a = await makeBusyboxImage();
    const b = await makeBusyboxImage({ cmd: ['echo', 'b'] });
    assert.equal(a.layers[0].digest, b.layers[0].digest);
    await a.writeToStore(state, 'a');
    await b.writeToStore(state, 'b');
    const orphan = await new ContentStore(state).writeBytes('left over from a crashed build');

    const r = await runImg(['--state', state, 'rm', 'a']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Untagged: a:latest\nDeleted: ${a.manifest.digest}\nDeleted: ${a.configDescriptor.digest}\nDeleted: ${orphan.digest}\n`);
    assert.deepEqual(await blobs(state), [...b.blobs.keys()].sort());

    // An unknown name is an error, but the known ones are still removed.
    const r2 = await runImg(['--state', state, 'rm', 'nope', 'b', 'localhost:5000/gone:1']);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /^Untagged: b:latest\n/);
    for (const d of b.blobs.keys()) assert.match(r2.stdout, new RegExp(`Deleted: ${d}\n`));
    assert.equal(r2.stderr, 'Error: No such image: nope\nError: No such image: localhost:5000/gone:1 — list local images with `img ls`\n');
    assert.deepEqual(await blobs(state), []);
    const ls = await runImg(['--state', state, 'ls']);
    assert.equal(ls.stdout, 'NAME\tSIZE\tCREATED AT\tUPDATED AT\tDIGEST\n');
  });

  it('keeps blobs still named by another tag', async () => {
    const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-rm2-'));
    dirs.push(state);
    const a = await makeBusyboxImage();
    await a.writeToStore(state, 'a');
    assert.equal((await runImg(['--state', state, 'tag', 'a', 'a:2'])).code, 0);
    const r = await runImg(['--state', state, 'rm', 'a']);
    assert.equal(r.stdout, 'Untagged: a:latest\n');
    assert.deepEqual(await blobs(state), [...a.blobs.keys()].sort());
    const bad = await runImg(['--state', state, 'rm', 'a:2', 'UPPER']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid reference "UPPER"/);
    assert.deepEqual(await blobs(state), [...a.blobs.keys()].sort(), 'nothing removed when a name is invalid');
  });

  it('rmi -f and image IDs, as docker rmi', async () => {
    const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-rmi-'));
    dirs.push(state);
    const a = await makeBusyboxImage();
    await a.writeToStore(state, 'a');
    await a.writeToStore(state, 'localhost:5000/a:1');
    const id = (await runImg(['--state', state, 'inspect', '-f', '{{.Id}}', 'a'])).stdout.trim();
    const short = id.slice(7, 19);

    // An ID with two names needs -f, and nothing is removed without it.
    const conflict = await runImg(['--state', state, 'rmi', short]);
    assert.equal(conflict.code, 1);
    assert.equal(conflict.stdout, '');
    assert.match(conflict.stderr, new RegExp(`^Error: conflict: unable to delete ${short} \\(must be forced\\) - image is referenced in multiple repositories — use img rm -f ${short}`));
    assert.deepEqual(await blobs(state), [...a.blobs.keys()].sort());

    // -f: every name goes; a missing image is said on stderr and the exit stays 0.
    const forced = await runImg(['--state', state, 'rmi', '-f', 'nope', short]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stderr, 'Error: No such image: nope\n');
    assert.match(forced.stdout, /^Untagged: a:latest\nUntagged: localhost:5000\/a:1\nDeleted: /);
    assert.deepEqual(await blobs(state), []);

    // One name: the ID alone removes it; without -f a missing image fails.
    await a.writeToStore(state, 'a');
    const one = await runImg(['--state', state, 'rm', id]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^Untagged: a:latest\n/);
    const gone = await runImg(['--state', state, 'rmi', short]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`^Error: No such image: ${short} — `));

    const noPrune = await runImg(['--state', state, 'rmi', '--no-prune', 'a']);
    assert.equal(noPrune.code, 1);
    assert.match(noPrune.stderr, /^Error: img rm does not support --no-prune: .* — drop --no-prune/);
    assert.match((await runImg(['rmi', '--help'])).stdout, /\nAliases:\n  rm, rmi\n/);
  });
});
