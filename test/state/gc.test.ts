// GC against the lock protocol, with real processes: a writer holding the
// shared store lock keeps GC waiting until its image record is written.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { collectGarbage, registerCacheRoot, removeCacheRoot } from '../../lib/state/gc';
import { diskUsage, prune } from '../../lib/state/du';
import { pruneIngest } from '../../lib/state/leftovers';
import { ImageStore } from '../../lib/images/store';
import { REPO } from '../helpers/cli';
import { makeBusyboxImage, makeIndex, sha256 } from '../fixtures/images';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));
async function tmp(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-gc-'));
  dirs.push(d);
  return d;
}

// A child that takes the shared lock, stores a blob, prints "locked", waits for
// a line on stdin, then names the blob in an image record and releases.
function writerProcess(state: string, env: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams {
  const script = `
    const { withStoreLock } = require(${JSON.stringify(path.join(REPO, 'lib/state/lock.ts'))});
    const { ContentStore } = require(${JSON.stringify(path.join(REPO, 'lib/content/store.ts'))});
    const { ImageStore } = require(${JSON.stringify(path.join(REPO, 'lib/images/store.ts'))});
    const state = process.argv[1];
    withStoreLock(state, 'shared', async () => {
      const { digest, size } = await new ContentStore(state).writeBytes('{"schemaVersion":2,"layers":[],"config":{}}');
      process.stdout.write('locked ' + digest + '\\n');
      await new Promise((r) => process.stdin.once('data', r));
      await new ImageStore(state).put('docker.io/library/w:latest', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size });
    }).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
  return spawn(process.execPath, ['--import', 'tsx', '-e', script, state], { cwd: REPO, env: { ...process.env, ...env } });
}

for (const [label, env] of [
  ['flock (addon)', {}],
  ['lock-file fallback', { IMG_LOCK_FALLBACK: '1' }],
] as const) {
  describe(`GC with a concurrent writer: ${label}`, () => {
    it('waits for the shared lock and keeps the blob the writer then names', async () => {
      const state = await tmp();
      const saved = process.env.IMG_LOCK_FALLBACK;
      if ('IMG_LOCK_FALLBACK' in env) process.env.IMG_LOCK_FALLBACK = env.IMG_LOCK_FALLBACK;
      else delete process.env.IMG_LOCK_FALLBACK;
      const child = writerProcess(state, env);
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on('close', r));
      try {
        const digest = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
            const m = /locked (sha256:[a-f0-9]{64})\n/.exec(out);
            if (m) resolve(m[1]);
          });
          child.on('close', (code) => reject(new Error(`writer exited ${code}: ${stderr}`)));
        });
        let settled = false;
        const gc = collectGarbage(state).finally(() => (settled = true));
        // GC must still be waiting while the writer holds its shared lock.
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(settled, false, 'GC ran while a writer held the shared lock');
        assert.equal(await new ContentStore(state).has(digest as never), true);
        child.stdin.write('go\n');
        const res = await gc;
        assert.equal(await exited, 0, stderr);
        assert.deepEqual(res.removed, []);
        assert.equal(await new ContentStore(state).has(digest as never), true);
        assert.equal((await new ImageStore(state).get('docker.io/library/w:latest'))?.target.digest, digest);
      } finally {
        child.kill();
        if (saved === undefined) delete process.env.IMG_LOCK_FALLBACK;
        else process.env.IMG_LOCK_FALLBACK = saved;
      }
    });
  });
}

describe('collectGarbage roots', () => {
  it('keeps named images (all platforms of an index), cache roots and extra roots; removes the rest', async () => {
    const state = await tmp();
    const amd = await makeBusyboxImage();
    const arm = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/arm': '1' } });
    const idx = await makeIndex([amd, arm]);
    await idx.writeToStore(state, 'multi');
    const content = new ContentStore(state);
    // Only one platform's blobs locally (like a pull of one platform): still fine.
    for (const d of arm.blobs.keys()) if (!amd.blobs.has(d)) await content.delete(d);
    const orphan = await content.writeBytes('orphan');
    const cached = await content.writeBytes('cache layer');
    const extra = await content.writeBytes('extra root');
    const cachedManifest = await makeBusyboxImage({ extraFiles: { 'cached/manifest': 'x' } });
    for (const [d, b] of cachedManifest.blobs) await content.writeBytes(b, { digest: d });
    await fsp.mkdir(path.join(state, 'cache', 'roots', 'sub'), { recursive: true });
    await registerCacheRoot(state, 'r1', [cached.digest]);
    await fsp.writeFile(path.join(state, 'cache', 'roots', 'sub', 'r2.json'), JSON.stringify({ digests: [cachedManifest.manifest.digest] }));
    await fsp.writeFile(path.join(state, 'cache', 'roots', 'broken.json'), '{');
    const res = await collectGarbage(state, [extra.digest]);
    assert.deepEqual(res.removed, [orphan.digest]);
    assert.equal(res.reclaimedBytes, 'orphan'.length);
    for (const d of [...amd.blobs.keys(), idx.manifest.digest, cached.digest, extra.digest, ...cachedManifest.blobs.keys()]) {
      assert.equal(await content.has(d), true, d);
    }
    // Dropping the cache root frees the manifest and everything under it.
    await fsp.rm(path.join(state, 'cache', 'roots', 'sub', 'r2.json'));
    const res2 = await collectGarbage(state);
    const freed = [...cachedManifest.blobs.keys()].filter((d) => !amd.blobs.has(d)).sort();
    assert.deepEqual(res2.removed.filter((d) => d !== extra.digest).sort(), freed);
    assert.ok(res2.removed.includes(extra.digest));
    assert.equal(await content.has(sha256('cache layer')), true);
    await removeCacheRoot(state, 'r1');
    assert.deepEqual((await collectGarbage(state)).removed, [cached.digest]);
    await assert.rejects(registerCacheRoot(state, '../escape', []), /invalid cache root id/);
  });
});

describe('collectGarbage safety', () => {
  it('stops without deleting anything when a named manifest is corrupt', async () => {
    const state = await tmp();
    const a = await makeBusyboxImage();
    await a.writeToStore(state, 'a');
    const content = new ContentStore(state);
    const orphan = await content.writeBytes('orphan');
    const p = content.blobPath(a.manifest.digest);
    await fsp.chmod(p, 0o644);
    await fsp.writeFile(p, 'garbage');
    await assert.rejects(collectGarbage(state), /garbage collection stopped, nothing was deleted: blob sha256:[a-f0-9]{64} is not valid JSON/);
    assert.equal(await content.has(orphan.digest), true);
    assert.equal(await content.has(a.layers[0].digest), true);
  });
});

// A child that starts writing a blob (its ingest file holds 300000 bytes), prints
// "writing", then waits to be killed: a pull or build SIGKILLed mid-download.
function ingestWriter(state: string): ChildProcessWithoutNullStreams {
  const script = `
    const { ContentStore } = require(${JSON.stringify(path.join(REPO, 'lib/content/store.ts'))});
    const ing = (globalThis.ing = new ContentStore(process.argv[1]).ingest()); // kept: a collected FileHandle closes its fd
    ing.stream.write(Buffer.alloc(300000), () => process.stdout.write('writing\\n'));
    setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ['--import', 'tsx', '-e', script, state], { cwd: REPO });
}

describe('partial writes of dead processes (ingest/)', () => {
  it('du counts them, prune and GC reclaim those no live process holds, a live writer keeps its own', async () => {
    const state = await tmp();
    const store = new ContentStore(state);
    const children: ChildProcessWithoutNullStreams[] = [];
    const killed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const child = ingestWriter(state);
      children.push(child);
      const before = new Set(await fsp.readdir(store.ingestDir).catch(() => [] as string[]));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => String(d).includes('writing') && resolve());
        child.on('exit', (code) => reject(new Error(`writer exited ${code}`)));
      });
      killed.push((await fsp.readdir(store.ingestDir)).find((n) => !before.has(n))!);
    }
    // Held while their writers live: neither reclaimable nor taken.
    const live = (await diskUsage(state)).filter((r) => r.type === 'ingest');
    assert.deepEqual(live.map((r) => [r.id, r.inUse, r.reclaimable, r.size]).sort(), killed.map((n) => [`ingest/${n}`, true, false, 300000]).sort());
    assert.equal(await pruneIngest(state), 0, 'live writers keep their files');
    for (const child of children) {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // A writer of this process, mid-way.
    const ing = store.ingest();
    await new Promise<void>((r) => ing.stream.write(Buffer.alloc(1000), () => r()));
    const rows = (await diskUsage(state)).filter((r) => r.type === 'ingest');
    assert.deepEqual(
      rows.map((r) => [r.id, r.inUse, r.reclaimable, r.size, r.description]).sort(),
      [
        ...killed.map((n) => [`ingest/${n}`, false, true, 300000, 'partial write of a process that died']),
        [rows.find((r) => r.inUse)!.id, true, false, 1000, 'partial write (in progress)'],
      ].sort(),
      'du: the dead writers\' files are reclaimable, the live one is in use',
    );
    // prune reports what it reclaimed; the live ingest stays and still commits.
    const res = await prune(state);
    assert.deepEqual(res.removed.filter((r) => r.type === 'ingest').map((r) => [r.id, r.size]).sort(), killed.map((n) => [`ingest/${n}`, 300000]).sort());
    assert.equal((await fsp.readdir(store.ingestDir)).length, 1);
    ing.stream.end(Buffer.from('x'));
    const w = await ing.commit();
    assert.equal(w.size, 1001);
    assert.deepEqual(await fsp.readdir(store.ingestDir), []);
  });

  it('without flock (a file nobody can lock), an hour of age decides', async () => {
    const state = await tmp();
    const dir = new ContentStore(state).ingestDir;
    await fsp.mkdir(dir, { recursive: true });
    // A directory cannot be flocked by the reclaimer's rules: judged by age.
    await fsp.mkdir(path.join(dir, 'old'));
    await fsp.mkdir(path.join(dir, 'young'));
    const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
    await fsp.utimes(path.join(dir, 'old'), hourAgo, hourAgo);
    await collectGarbage(state);
    assert.deepEqual(await fsp.readdir(dir), ['young']);
  });
});
