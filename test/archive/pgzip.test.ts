// Parallel gzip (lib/archive/pgzip.ts): valid single-member gzip read by GNU gzip, Node's zlib,
// umoci and skopeo (Go's compress/gzip); identical bytes whatever the pool size; bounded work in
// flight; an idle pool never keeps the process alive.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { createLayerBlob } from '../../lib/archive/layer';
import { compareDirs, writeLayer } from '../../lib/archive/diff';
import { DeflatePool, ParallelGzip, PGZIP_THRESHOLD } from '../../lib/archive/pgzip';
import { tmp, rmrf, describeTree } from './helpers';
import { writeOciLayout } from './oci';

const CHUNK = 64 * 1024; // small chunks keep the edge cases cheap; the default path is tested below
const pools = [1, 2, 4].map((n) => new DeflatePool(n));
after(() => Promise.all(pools.map((p) => p.close())));

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// Half text-like (compressible), half pseudo-random (not): both block kinds show up.
function sample(size: number): Buffer {
  const b = Buffer.alloc(size);
  let s = 12345;
  for (let i = 0; i < size; i++) {
    if ((i >> 12) & 1) {
      s = (s * 1103515245 + 12345) >>> 0;
      b[i] = s >>> 24;
    } else b[i] = 'layer data, layer data; '.charCodeAt(i % 24) ^ (i % 7 === 0 ? 1 : 0);
  }
  return b;
}

// Feed in odd-sized pieces so chunk boundaries never line up with writes.
async function pgzip(data: Buffer, opts: ConstructorParameters<typeof ParallelGzip>[0]): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let off = 0, k = 0; off < data.length; k++) {
    const n = [7, 65536, 100003, 1][k % 4];
    pieces.push(data.subarray(off, off + n));
    off += n;
  }
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), new ParallelGzip(opts), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const sizes: Array<[string, number]> = [
  ['0 bytes', 0],
  ['1 byte', 1],
  ['chunk-1', CHUNK - 1],
  ['chunk', CHUNK],
  ['chunk+1', CHUNK + 1],
  ['10 chunks + odd tail', 10 * CHUNK + 4321],
];

for (const [name, size] of sizes) {
  test(`pgzip ${name}: same bytes on 1/2/4 workers, read back by zlib and GNU gzip`, async () => {
    const data = sample(size);
    const outs = await Promise.all(pools.map((pool) => pgzip(data, { pool, chunkSize: CHUNK, threshold: 0, level: 1 })));
    assert.equal(sha(outs[1]), sha(outs[0]), 'pool of 2 vs 1');
    assert.equal(sha(outs[2]), sha(outs[0]), 'pool of 4 vs 1');
    const gz = outs[0];
    // one member: header as zlib writes it, trailer = CRC-32 and length of the input
    assert.deepEqual([...gz.subarray(0, 4)], [0x1f, 0x8b, 8, 0]);
    assert.equal(gz.readUInt32LE(gz.length - 8), zlib.crc32(data));
    assert.equal(gz.readUInt32LE(gz.length - 4), size);
    assert.ok(zlib.gunzipSync(gz).equals(data), 'zlib.gunzip');
    // a single member: inflating raw deflate after the header ends exactly before the trailer
    const inflated = zlib.inflateRawSync(gz.subarray(10, gz.length - 8));
    assert.ok(inflated.equals(data), 'one deflate stream');
    const r = spawnSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(String(r.stderr), '');
    assert.ok(r.stdout.equals(data), 'gzip -dc');
  });
}

test('pgzip: the dictionary keeps the ratio near one zlib stream', async () => {
  const data = Buffer.concat(Array.from({ length: 24 }, () => sample(CHUNK).subarray(0, 40000)));
  const par = await pgzip(data, { pool: pools[1], chunkSize: CHUNK, threshold: 0 });
  const one = zlib.gzipSync(data, { level: 1 });
  assert.ok(par.length < one.length * 1.05, `${par.length} vs ${one.length}`);
});

test('pgzip: below the threshold the bytes are plain zlib gzip (no workers)', async () => {
  const data = sample(3 * CHUNK + 5);
  const p = new DeflatePool(1);
  let used = false;
  p.run = () => ((used = true), Promise.reject(new Error('pool used')));
  const out = await pgzip(data, { pool: p, chunkSize: CHUNK, threshold: 4 * CHUNK, level: 6 });
  assert.equal(used, false);
  assert.ok(out.equals(zlib.gzipSync(data, { level: 6 })));
  // and from the threshold on, the parallel path
  const big = await pgzip(sample(4 * CHUNK), { pool: pools[0], chunkSize: CHUNK, threshold: 4 * CHUNK });
  assert.ok(zlib.gunzipSync(big).equals(sample(4 * CHUNK)));
  assert.notEqual(sha(big), sha(zlib.gzipSync(sample(4 * CHUNK), { level: 1 })));
});

test('pgzip: chunks in flight stay bounded with a slow reader', async () => {
  const pool = new DeflatePool(2);
  let out = 0;
  let max = 0;
  const run = pool.run.bind(pool);
  pool.run = (job) => {
    max = Math.max(max, ++out);
    return run(job).finally(() => out--);
  };
  const slow = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => setTimeout(cb, 2) });
  const data = sample(40 * CHUNK);
  try {
    await pipeline(Readable.from([data]), new ParallelGzip({ pool, chunkSize: CHUNK, threshold: 0, inFlight: 3 }), slow);
  } finally {
    await pool.close();
  }
  assert.ok(max <= 3, `max in flight ${max}`);
});

test('pgzip: a deflate failure fails the stream', async () => {
  await assert.rejects(pgzip(sample(3 * CHUNK), { pool: pools[1], chunkSize: CHUNK, threshold: 0, level: 42 }), /deflate failed/);
});

test('createLayerBlob: a layer over the threshold is read by GNU tar, umoci and skopeo; digests match', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'opt'), { recursive: true });
    // ~6 MiB: over the 4 MiB threshold, several 1 MiB chunks and an odd tail
    fs.writeFileSync(path.join(src, 'opt/a.bin'), sample(PGZIP_THRESHOLD + 1234567));
    fs.writeFileSync(path.join(src, 'opt/b.txt'), 'hello\n'.repeat(100000));
    fs.symlinkSync('a.bin', path.join(src, 'opt/link'));
    const blob = path.join(base, 'layer.tgz');
    const r = await createLayerBlob(writeLayer(compareDirs(null, src), src), 'gzip', fs.createWriteStream(blob));
    const gz = fs.readFileSync(blob);
    assert.equal(r.digest, `sha256:${sha(gz)}`);
    assert.equal(r.size, gz.length);
    const tar = execFileSync('gzip', ['-dc', blob], { maxBuffer: 64 << 20 });
    assert.equal(r.diffId, `sha256:${sha(tar)}`);
    assert.equal(r.uncompressedSize, tar.length);
    assert.ok(tar.length > PGZIP_THRESHOLD);
    // same layer again: same bytes
    const blob2 = path.join(base, 'layer2.tgz');
    const r2 = await createLayerBlob(writeLayer(compareDirs(null, src), src), 'gzip', fs.createWriteStream(blob2));
    assert.equal(r2.digest, r.digest);

    const layout = path.join(base, 'layout');
    writeOciLayout(layout, [{ file: blob, ...r }]);
    const bundle = path.join(base, 'bundle');
    const u = spawnSync('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    const strip = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.replace(/ \d+:\d+/, '')]));
    assert.deepEqual(strip(describeTree(path.join(bundle, 'rootfs'))), strip(describeTree(src)));
    // skopeo decompresses the layer with Go's compress/gzip into a dir: the bytes are the diffID's
    const dir = path.join(base, 'dir');
    const s = spawnSync('skopeo', ['copy', '--quiet', '--dest-decompress', `oci:${layout}:latest`, `dir:${dir}`], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    const files = fs.readdirSync(dir).filter((f) => /^[0-9a-f]{64}$/.test(f));
    const hashes = files.map((f) => sha(fs.readFileSync(path.join(dir, f))));
    assert.ok(hashes.includes(r.diffId.slice(7)), `skopeo's decompressed layer ${hashes} vs ${r.diffId}`);
  } finally {
    rmrf(base);
  }
});

test('the shared pool does not keep the process alive', () => {
  const script = `
    const { ParallelGzip } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/archive/pgzip.ts'))});
    const { Readable, Writable } = require('node:stream');
    const { pipeline } = require('node:stream/promises');
    let n = 0;
    pipeline(Readable.from([Buffer.alloc(6 << 20, 1)]), new ParallelGzip({ threshold: 0 }), new Writable({ write: (c, e, cb) => { n += c.length; cb(); } }))
      .then(() => console.log('done', n));
  `;
  // the timeout is a hang guard, not a speed check
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 120000, cwd: path.resolve(__dirname, '../..') });
  assert.equal(r.signal, null, 'process hung with an idle pool');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^done \d+/);
});
