// A prune that runs while builds run (img prune beside img build on one state dir):
// a snapshot found by a lookup and then leased may have been removed in between,
// and a parent must not go before a child prune did not know of.
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { NativeSnapshotter } from '../../lib/snapshot/native';
import { leaseFile, releaseAllLeases, releaseLease } from '../../lib/snapshot/lease';
import { lockFile } from '../../lib/host/index';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));

async function state(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-prune-race-'));
  dirs.push(d);
  return d;
}

async function committed(sn: NativeSnapshotter, parent: string | null, file: string, key?: string): Promise<string> {
  const a = await sn.prepare(parent, 'test');
  await fsp.writeFile(path.join(sn.fsDir(a), file), file);
  return sn.commit(a, 'test', key);
}

test('commit under a key whose snapshot a prune removes between the lookup and the lease: commits its own', async () => {
  const dir = await state();
  const sn = new NativeSnapshotter(dir);
  const key = 'sha256:' + 'a'.repeat(64);
  const first = await committed(sn, null, 'first', key);
  await releaseAllLeases(); // the process that made it ended

  const active = await sn.prepare(null, 'test');
  await fsp.writeFile(path.join(sn.fsDir(active), 'second'), 'second');
  // The prune (another snapshotter: another process) removes it right after our lookup.
  const pruner = new NativeSnapshotter(dir);
  const read = sn.readMeta.bind(sn);
  let raced = false;
  sn.readMeta = async (id: string) => {
    const meta = await read(id);
    if (id === first && meta && !raced) {
      raced = true;
      assert.equal(await pruner.removeIfIdle(id), true, 'the prune took it');
    }
    return meta;
  };
  const got = await sn.commit(active, 'test', key);
  assert.ok(raced);
  assert.equal(got, first);
  const meta = await read(got);
  assert.equal(meta?.kind, 'committed', 'the snapshot the commit returns exists');
  assert.deepEqual(await fsp.readdir(sn.fsDir(got)), ['second']);
  assert.equal(await pruner.removeIfIdle(got), false, 'and it is leased');
  await releaseAllLeases();
});

test('getLeased: a snapshot removed between the lookup and the lease is a miss, not a lease on nothing', async () => {
  const dir = await state();
  const sn = new NativeSnapshotter(dir);
  const key = 'sha256:' + 'b'.repeat(64);
  const id = await committed(sn, null, 'x', key);
  await releaseAllLeases();
  const pruner = new NativeSnapshotter(dir);
  const get = sn.get.bind(sn);
  sn.get = async (k: string) => {
    const info = await get(k);
    await pruner.removeIfIdle(id);
    return info;
  };
  assert.equal(await sn.getLeased(key), null);
  sn.get = get;
  const again = await committed(sn, null, 'y', key);
  await releaseAllLeases();
  assert.notEqual(await sn.getLeased(key), null);
  assert.equal(await pruner.removeIfIdle(again), false, 'a found snapshot stays leased');
  await releaseAllLeases();
});

test('prune does not remove a parent whose child was made after it listed the snapshots', async () => {
  const dir = await state();
  const sn = new NativeSnapshotter(dir);
  const parent = await committed(sn, null, 'base');
  await releaseAllLeases();
  const known = new Set((await sn.listMeta()).map((m) => m.id)); // prune's listing
  const child = await committed(sn, parent, 'step'); // a build that then ended
  await releaseAllLeases();
  const pruner = new NativeSnapshotter(dir);
  assert.equal(await pruner.removeIfIdle(parent, known), false, 'skipped: it has a child');
  assert.equal((await sn.chain(child)).length, 2, 'the child still mounts on its parent');
  assert.equal(await pruner.removeIfIdle(child, new Set([...known, child])), true);
  assert.equal(await pruner.removeIfIdle(parent, new Set([...known, child])), true, 'without the child it goes');
});

test("removing this process's own snapshot while a prune or du probes its lock waits for the probe", async () => {
  const dir = await state();
  const sn = new NativeSnapshotter(dir);
  const active = await sn.prepare(null, 'test');
  // remove() lets go of its lease first; in that moment another process's isBusy or
  // removeIfIdle takes the exclusive lock, for a moment.
  await releaseLease(dir, 'native', active, true);
  const probe = await lockFile(leaseFile(dir, 'native', active), 'exclusive', { wait: false, create: false });
  const released = new Promise<void>((r) => setTimeout(() => probe.release().then(r), 200));
  await sn.remove(active);
  await released;
  assert.equal(await sn.readMeta(active), null);
  assert.deepEqual(await sn.strays(), []);
});
