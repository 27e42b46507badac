import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ImageStore } from '../../lib/images/store';
import { MediaType, type Descriptor } from '../../lib/images/types';
import { sha256 } from '../fixtures/images';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));
async function tmp(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-imgstore-'));
  dirs.push(d);
  return d;
}
const desc = (s: string): Descriptor => ({ mediaType: MediaType.OciManifest, digest: sha256(s), size: s.length });

describe('ImageStore', () => {
  it('puts, gets, lists sorted and deletes records', async () => {
    const state = await tmp();
    const store = new ImageStore(state);
    assert.equal(await store.get('docker.io/library/busybox:latest'), null);
    assert.deepEqual(await store.list(), []);
    const a = await store.put('localhost:5000/z:1', desc('z'));
    const b = await store.put('docker.io/library/busybox:latest', desc('b'));
    assert.equal(a.name, 'localhost:5000/z:1');
    assert.deepEqual(b.target, desc('b'));
    assert.deepEqual((await store.list()).map((r) => r.name), ['docker.io/library/busybox:latest', 'localhost:5000/z:1']);
    assert.deepEqual(await store.get('localhost:5000/z:1'), a);
    assert.equal(await store.delete('localhost:5000/z:1'), true);
    assert.equal(await store.delete('localhost:5000/z:1'), false);
    assert.deepEqual((await store.list()).map((r) => r.name), ['docker.io/library/busybox:latest']);
    // One file per name, no temp files left behind.
    const files = await fsp.readdir(path.join(state, 'images'));
    assert.equal(files.length, 1);
    assert.match(files[0], /^[a-f0-9]{64}\.json$/);
  });

  it('re-pointing keeps createdAt and bumps updatedAt', async () => {
    const store = new ImageStore(await tmp());
    const first = await store.put('docker.io/library/x:latest', desc('1'));
    await new Promise((r) => setTimeout(r, 15));
    const second = await store.put('docker.io/library/x:latest', desc('2'));
    assert.equal(second.createdAt, first.createdAt);
    assert.ok(second.updatedAt > first.updatedAt);
    assert.equal((await store.get('docker.io/library/x:latest'))?.target.digest, sha256('2'));
  });

  it('a corrupt record is reported with its path', async () => {
    const state = await tmp();
    const store = new ImageStore(state);
    await store.put('docker.io/library/x:latest', desc('1'));
    const [f] = await fsp.readdir(path.join(state, 'images'));
    await fsp.writeFile(path.join(state, 'images', f), '{not json');
    await assert.rejects(store.list(), /image record .* is corrupt/);
  });
});
