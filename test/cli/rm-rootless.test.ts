// The store commands as an unprivileged user (state dir it owns): ls, tag, rm
// (with GC and the flock), save; nothing here needs root or a user namespace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await cleanup(d);
});

function chownTree(dir: string): void {
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
}

describe('store commands as an unprivileged user', { skip: skipUnlessRootless() }, () => {
  it('ls, tag, save, rm work on a state dir the user owns', async () => {
    const state = tempDir('img-store-rootless-');
    const out = tempDir('img-store-rootless-out-');
    dirs.push(state, out);
    const a = await makeBusyboxImage();
    const b = await makeBusyboxImage({ cmd: ['echo', 'b'] });
    await a.writeToStore(state, 'a');
    await b.writeToStore(state, 'b');
    chownTree(state);

    const tag = await runImgRootless(['--state', state, 'tag', 'a', 'localhost:5000/a:2']);
    assert.equal(tag.code, 0, tag.stderr);
    const ls = await runImgRootless(['--state', state, 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.split('\n').slice(1, -1).map((l) => l.split('\t')[0]), ['a:latest', 'b:latest', 'localhost:5000/a:2']);

    const file = path.join(out, 'a.tar');
    const save = await runImgRootless(['--state', state, 'save', '-o', file, 'localhost:5000/a:2']);
    assert.equal(save.code, 0, save.stderr);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' }));
    assert.deepEqual(info.Layers, a.diffIds);

    const rm = await runImgRootless(['--state', state, 'rm', 'a', 'localhost:5000/a:2']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, `Untagged: a:latest\nUntagged: localhost:5000/a:2\nDeleted: ${a.manifest.digest}\nDeleted: ${a.configDescriptor.digest}\n`);
    const left = fs.readdirSync(path.join(state, 'content/blobs/sha256')).sort();
    assert.deepEqual(left, [...b.blobs.keys()].map((d) => d.slice(7)).sort());
    // The lock file was created by (and belongs to) the user.
    assert.equal(fs.statSync(path.join(state, 'locks/store.lock')).uid, rootlessUser()!.uid);
  });
});
