import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { ImgError } from '../../lib/util/errors';
import { REPO } from '../helpers/cli';
import { sha256 } from '../fixtures/images';

let state: string;
before(async () => {
  state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-content-'));
});
after(async () => {
  await fsp.rm(state, { recursive: true, force: true });
});

async function leftovers(dir: string): Promise<string[]> {
  return fsp.readdir(dir).catch(() => []);
}

describe('ContentStore', () => {
  it('writes, reads back and lists a blob at blobs/sha256/<hex>', async () => {
    const store = new ContentStore(state);
    const data = Buffer.from('hello world\n');
    const res = await store.writeBytes(data);
    assert.equal(res.digest, sha256(data));
    assert.equal(res.size, data.length);
    assert.equal(store.blobPath(res.digest), path.join(state, 'content', 'blobs', 'sha256', res.digest.slice(7)));
    assert.deepEqual(await store.readBytes(res.digest), data);
    assert.deepEqual(await store.stat(res.digest), { size: data.length });
    assert.equal(await store.has(res.digest), true);
    const listed = [];
    for await (const b of store.list()) listed.push(b);
    assert.deepEqual(listed, [{ digest: res.digest, size: data.length }]);
    const chunks: Buffer[] = [];
    for await (const c of store.createReadStream(res.digest)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello world\n');
    assert.deepEqual(await leftovers(store.ingestDir), []);
  });

  it('streams a large source and verifies expected digest and size', async () => {
    const store = new ContentStore(state);
    const parts = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const whole = Buffer.concat(parts);
    const res = await store.write(Readable.from(parts), { digest: sha256(whole), size: whole.length });
    assert.equal(res.size, whole.length);
    assert.equal((await store.readBytes(res.digest)).equals(whole), true);
  });

  it('rejects a digest mismatch, naming expected and actual, and leaves nothing behind', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-content-mm-'));
    const store = new ContentStore(dir);
    const wrong = sha256('something else');
    const actual = sha256('payload');
    await assert.rejects(
      store.write(Readable.from([Buffer.from('pay'), Buffer.from('load')]), { digest: wrong }),
      (err: unknown) => err instanceof ImgError && err.message.includes(wrong) && err.message.includes(actual),
    );
    assert.deepEqual(await leftovers(store.ingestDir), []);
    assert.deepEqual(await leftovers(store.blobsDir), []);
    await assert.rejects(store.writeBytes('payload', { size: 3 }), /larger than expected|size mismatch/);
    await assert.rejects(store.writeBytes('payload', { size: 30 }), /size mismatch.*expected 30 bytes, got 7/);
    assert.deepEqual(await leftovers(store.ingestDir), []);
    assert.deepEqual(await leftovers(store.blobsDir), []);
    await fsp.rm(dir, { recursive: true });
  });

  it('a failing source aborts the ingest', async () => {
    const store = new ContentStore(state);
    async function* bad() {
      yield Buffer.from('partial');
      throw new Error('connection reset');
    }
    await assert.rejects(store.write(bad()), /connection reset/);
    assert.deepEqual(await leftovers(store.ingestDir), []);
  });

  it('ingest() takes pushed data; an already-present blob is skipped', async () => {
    const store = new ContentStore(state);
    const ing = store.ingest();
    ing.stream.write('abc');
    ing.stream.write(Buffer.from('def'));
    const res = await ing.commit();
    assert.equal(res.digest, sha256('abcdef'));
    let consumed = 0;
    async function* src() {
      consumed++;
      yield Buffer.from('abcdef');
    }
    assert.deepEqual(await store.write(src(), { digest: res.digest, size: 6 }), res);
    assert.equal(consumed, 1, 'source is drained');
    // ingest() of a blob already stored drops the data without touching ingest/.
    const again = store.ingest({ digest: res.digest, size: 6 });
    again.stream.write('abc');
    again.stream.write('def');
    assert.deepEqual(await leftovers(store.ingestDir), []);
    assert.deepEqual(await again.commit(), res);
    const ab = store.ingest();
    ab.stream.write('zzz');
    await ab.abort();
    assert.deepEqual(await leftovers(store.ingestDir), []);
  });

  it('missing blobs raise ImgError; invalid digests too', async () => {
    const store = new ContentStore(state);
    const d = sha256('never written');
    await assert.rejects(store.readBytes(d), (e: unknown) => e instanceof ImgError && e.message.includes(d));
    assert.throws(() => store.createReadStream(d), ImgError);
    assert.throws(() => store.blobPath('sha256:xyz' as never), /invalid digest "sha256:xyz"/);
    assert.equal(await store.stat(d), null);
    await store.delete(d); // no-op
  });

  it('concurrent writers of the same blob (in several processes) all succeed', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-content-cc-'));
    const payload = Buffer.alloc(3 << 20, 7);
    const src = path.join(dir, 'payload');
    await fsp.writeFile(src, payload);
    const script = `
      const { ContentStore } = require(${JSON.stringify(path.join(REPO, 'lib/content/store.ts'))});
      const fs = require('node:fs');
      new ContentStore(process.argv[1]).write(fs.createReadStream(process.argv[2]))
        .then((r) => process.stdout.write(JSON.stringify(r)), (e) => { console.error(e); process.exit(1); });`;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const c = spawn(process.execPath, ['--import', 'tsx', '-e', script, dir, src], { cwd: REPO });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => process.stderr.write(d));
        c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`writer exited ${code}`))));
      });
    const inProc = Array.from({ length: 4 }, () => new ContentStore(dir).write(fs.createReadStream(src)));
    const results = await Promise.all([run(), run(), run(), ...inProc]);
    const want = { digest: sha256(payload), size: payload.length };
    for (const r of results) assert.deepEqual(typeof r === 'string' ? JSON.parse(r) : r, want);
    const store = new ContentStore(dir);
    assert.equal((await store.readBytes(want.digest)).equals(payload), true);
    assert.deepEqual(await leftovers(store.ingestDir), []);
    await fsp.rm(dir, { recursive: true });
  });

  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`a writer stopped by ${signal} mid-blob removes its partial file and exits ${code}`, async () => {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-content-sig-'));
      const script = `
        const { ContentStore } = require(${JSON.stringify(path.join(REPO, 'lib/content/store.ts'))});
        const ing = (globalThis.ing = new ContentStore(process.argv[1]).ingest());
        ing.stream.write(Buffer.alloc(300000), () => process.stdout.write('writing\\n'));
        setInterval(() => {}, 1000);`;
      const c = spawn(process.execPath, ['--import', 'tsx', '-e', script, dir], { cwd: REPO });
      await new Promise<void>((resolve, reject) => {
        c.stdout.on('data', (d) => String(d).includes('writing') && resolve());
        c.on('exit', (n) => reject(new Error(`writer exited ${n}`)));
      });
      assert.equal((await leftovers(path.join(dir, 'ingest'))).length, 1);
      const exited = new Promise<number | null>((r) => c.on('exit', (n) => r(n)));
      c.kill(signal);
      assert.equal(await exited, code);
      assert.deepEqual(await leftovers(path.join(dir, 'ingest')), [], 'no partial blob left behind');
      await fsp.rm(dir, { recursive: true });
    });
  }
});
