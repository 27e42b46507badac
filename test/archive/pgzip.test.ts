// Parallel gzip (lib/archive/pgzip.ts) on the addon's codec pool, with ISA-L and with zlib (the
// fallback of an addon built without ISA-L): one valid gzip member read by GNU gzip, Node's
// zlib, umoci and skopeo (Go's compress/gzip); identical bytes whatever the thread count, the
// way the input arrives or the timing; bounded work in flight; an idle pool never keeps the
// process alive.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { codecAddon } from '../../lib/archive/codecs';
import { createLayerBlob, EMPTY_TAR_GZIP } from '../../lib/archive/layer';
import { compareDirs, layerChunkReturn, writeLayer } from '../../lib/archive/diff';
import { ParallelGzip, type DeflateChunk, type PGzipOptions } from '../../lib/archive/pgzip';
import { tmp, rmrf, describeTree } from './helpers';
import { writeOciLayout } from './oci';
import { sample } from './samples';

const addon = codecAddon()!;
const threadsBefore = addon.codecThreads();
after(() => addon.codecThreads(threadsBefore));

const CHUNK = 64 * 1024; // small chunks keep the edge cases cheap; the default size is tested below
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const CODECS = addon.codecVersions.isal ? (['isal', 'zlib'] as const) : (['zlib'] as const);

// Feed in odd-sized pieces (or whole) so chunk boundaries never line up with writes.
async function pgzip(data: Buffer, opts: PGzipOptions, whole = false): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let off = 0, k = 0; off < data.length; k++) {
    const n = whole ? data.length : [7, 65536, 100003, 1][k % 4];
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

for (const codec of CODECS) {
  for (const [name, size] of sizes) {
    test(`pgzip ${codec} ${name}: same bytes on 1/2/4 threads, whole or in pieces; read back by zlib and GNU gzip`, async () => {
      const data = sample(size);
      const outs: Buffer[] = [];
      for (const threads of [1, 2, 4]) {
        addon.codecThreads(threads);
        outs.push(await pgzip(data, { codec, chunkSize: CHUNK, level: 1 }));
      }
      outs.push(await pgzip(data, { codec, chunkSize: CHUNK, level: 1, inFlight: 1 }, true));
      addon.codecThreads(threadsBefore);
      for (let i = 1; i < outs.length; i++) assert.equal(sha(outs[i]), sha(outs[0]), `run ${i} vs 1 thread`);
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
}

test('pgzip: ISA-L and zlib write different deflate; levels 0 and 4-9 are zlib\'s', { skip: !addon.codecVersions.isal && 'this addon was built without ISA-L' }, async () => {
  const data = sample(5 * CHUNK + 77);
  const isal = await pgzip(data, { codec: 'isal', chunkSize: CHUNK, level: 1 });
  const zl = await pgzip(data, { codec: 'zlib', chunkSize: CHUNK, level: 1 });
  assert.notEqual(sha(isal), sha(zl));
  assert.ok(zlib.gunzipSync(isal).equals(data) && zlib.gunzipSync(zl).equals(data));
  for (const level of [0, 6, 9]) {
    const a = await pgzip(data, { codec: 'isal', chunkSize: CHUNK, level });
    const b = await pgzip(data, { codec: 'zlib', chunkSize: CHUNK, level });
    assert.equal(sha(a), sha(b), `level ${level}`);
    assert.equal(a[8], level === 9 ? 2 : level === 0 ? 4 : 0, 'XFL as zlib sets it');
    assert.ok(zlib.gunzipSync(a).equals(data));
  }
  // level 0 stores: the blob is a little bigger than its data
  const stored = await pgzip(data, { chunkSize: CHUNK, level: 0 });
  assert.ok(stored.length > data.length && stored.length < data.length * 1.01, `${stored.length}`);
});

// A chunk one write holds whole is compressed in place; a chunk that spans writes is copied
// together first. Which one happens must not show in the bytes.
test('pgzip: chunks viewed in the writes and chunks copied together give the same bytes', async () => {
  const data = sample(5 * CHUNK + 777);
  for (const codec of CODECS) {
    const feed = async (sizes: number[]): Promise<string> => {
      const pieces: Buffer[] = [];
      for (let off = 0, k = 0; off < data.length; k++) pieces.push(data.subarray(off, (off += sizes[k % sizes.length])));
      const out: Buffer[] = [];
      await pipeline(Readable.from(pieces), new ParallelGzip({ codec, chunkSize: CHUNK }), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
      const gz = Buffer.concat(out);
      assert.ok(zlib.gunzipSync(gz).equals(data));
      return sha(gz);
    };
    const viewed = await feed([CHUNK]);
    assert.equal(await feed([1, 512, 7]), viewed, `${codec}: every chunk copied`);
    assert.equal(await feed([CHUNK + 3, CHUNK - 3, 2 * CHUNK]), viewed, `${codec}: some viewed, some copied`);
  }
});

test('pgzip: the dictionary keeps the ratio near one stream of the same codec', async () => {
  const data = Buffer.concat(Array.from({ length: 24 }, () => sample(CHUNK).subarray(0, 40000)));
  for (const codec of CODECS) {
    const par = await pgzip(data, { codec, chunkSize: CHUNK });
    const one = await pgzip(data, { codec, chunkSize: 2 * data.length });
    assert.ok(par.length < one.length * 1.05, `${codec}: ${par.length} vs ${one.length}`);
  }
});

test('pgzip: chunks in flight stay bounded with a slow reader', async () => {
  let out = 0;
  let max = 0;
  const deflate: DeflateChunk = (...args) => {
    max = Math.max(max, ++out);
    return addon.deflateChunk(...args).finally(() => out--);
  };
  const slow = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => setTimeout(cb, 2) });
  await pipeline(Readable.from([sample(40 * CHUNK)]), new ParallelGzip({ chunkSize: CHUNK, inFlight: 3, deflate }), slow);
  assert.ok(max <= 3, `max in flight ${max}`);
});

test('pgzip: a failed chunk fails the stream; bad options are refused up front', async () => {
  let calls = 0;
  const deflate: DeflateChunk = (...args) => (++calls === 2 ? Promise.reject(new Error('chunk failed')) : addon.deflateChunk(...args));
  await assert.rejects(pgzip(sample(3 * CHUNK), { chunkSize: CHUNK, deflate }), /chunk failed/);
  assert.throws(() => new ParallelGzip({ level: 42 }), RangeError);
  assert.throws(() => new ParallelGzip({ chunkSize: 1024 }), RangeError);
});

test('createLayerBlob: a multi-chunk gzip layer is read by GNU tar, umoci and skopeo; digests match', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'opt'), { recursive: true });
    // ~6 MiB: several 1 MiB chunks and an odd tail
    fs.writeFileSync(path.join(src, 'opt/a.bin'), sample(4 * 1024 * 1024 + 1234567));
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
    assert.ok(tar.length > 4 * 1024 * 1024);
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

// BuildKit's emptyGZLayer: every image whose step changed nothing shares this blob.
test('createLayerBlob: an empty diff is the 32-byte blob BuildKit writes (sha256:4f4fb700…); a one-entry tar is compressed as usual', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const blob = path.join(base, 'empty.tgz');
    const r = await createLayerBlob(writeLayer(compareDirs(src, src), src), 'gzip', fs.createWriteStream(blob));
    const gz = fs.readFileSync(blob);
    assert.equal(r.digest, 'sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1');
    assert.equal(r.diffId, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
    assert.deepEqual([r.size, r.uncompressedSize, gz.length], [32, 1024, 32]);
    assert.ok(gz.equals(EMPTY_TAR_GZIP));
    assert.ok(execFileSync('gzip', ['-dc', blob]).equals(Buffer.alloc(1024)), 'GNU gzip reads it as the empty tar');

    fs.writeFileSync(path.join(src, 'a'), '');
    const one = path.join(base, 'one.tgz');
    const r1 = await createLayerBlob(writeLayer(compareDirs(null, src), src), 'gzip', fs.createWriteStream(one));
    const tar = execFileSync('gzip', ['-dc', one]);
    assert.equal(r1.diffId, `sha256:${sha(tar)}`);
    assert.notEqual(r1.digest, r.digest);
    assert.match(execFileSync('tar', ['-tf', '-'], { input: tar, encoding: 'utf8' }), /^a$/m);
  } finally {
    rmrf(base);
  }
});

test('an idle codec pool does not keep the process alive', () => {
  const script = `
    const { compressStream, decompressStream } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/archive/compression.ts'))});
    const { Readable, Writable } = require('node:stream');
    const { pipeline } = require('node:stream/promises');
    let n = 0;
    pipeline(Readable.from([Buffer.alloc(6 << 20, 1)]), compressStream('gzip'), decompressStream('gzip'), compressStream('zstd'),
      new Writable({ write: (c, e, cb) => { n += c.length; cb(); } }))
      .then(() => console.log('done', n));
  `;
  // the timeout is a hang guard, not a speed check
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 120000, cwd: path.resolve(__dirname, '../..') });
  assert.equal(r.signal, null, 'process hung with an idle pool');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^done \d+/);
});

// writeLayer lends its 1 MiB chunks to the parallel gzip, which reads them in place and gives
// each back once the jobs that read it are done (layerChunkReturn): a big file then costs a few
// buffers instead of a fresh MiB per MiB waiting for V8 to collect it. Reusing a buffer too
// early would change the bytes.
test('createLayerBlob: writeLayer chunks taken back by the gzip are reused, and the blob is the same as without', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'opt'), { recursive: true });
    fs.writeFileSync(path.join(src, 'opt/a.bin'), sample(20 * 1024 * 1024 + 4321));
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, `opt/f${i}`), sample(30000 + i * 777));
    const blob = async (hideChunks: boolean): Promise<{ gz: Buffer; diffId: string; digest: string }> => {
      let tar: NodeJS.ReadableStream = writeLayer(compareDirs(null, src), src);
      // A PassThrough in between is not writeLayer's stream: nothing is taken back.
      if (hideChunks) tar = (tar as Readable).pipe(new PassThrough());
      const out: Buffer[] = [];
      const r = await createLayerBlob(tar, 'gzip', new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
      return { gz: Buffer.concat(out), diffId: r.diffId, digest: r.digest };
    };
    const reused = await blob(false);
    const fresh = await blob(true);
    assert.equal(reused.digest, fresh.digest);
    assert.equal(reused.diffId, fresh.diffId);
    const tar = zlib.gunzipSync(reused.gz);
    assert.equal(reused.diffId, `sha256:${sha(tar)}`);
    assert.ok(tar.includes(fs.readFileSync(path.join(src, 'opt/a.bin'))), 'the big file is in the tar intact');

    // The buffers: count the distinct ones writeLayer hands out over ~21 MiB of layer.
    const tarStream = writeLayer(compareDirs(null, src), src);
    const seen = new Set<ArrayBufferLike>();
    const spy = new PassThrough();
    const gz = new ParallelGzip({ consumed: layerChunkReturn(tarStream) });
    (tarStream as Readable).on('data', (c: Buffer) => {
      if (c.buffer.byteLength === 1024 * 1024) seen.add(c.buffer);
      if (!gz.write(c)) (tarStream as Readable).pause();
    });
    gz.on('drain', () => (tarStream as Readable).resume());
    tarStream.on('end', () => gz.end());
    const chunks: Buffer[] = [];
    await pipeline(gz, spy, new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }));
    assert.equal(sha(Buffer.concat(chunks)), reused.digest.slice(7), 'same blob through the gzip directly');
    // At most: the chunks the gzip has in flight (2 × threads + 2), plus writeLayer's read-ahead
    // (two chunks queued, the one being filled) and its spares.
    const bound = 2 * addon.codecThreads() + 2 + 7;
    assert.ok(seen.size <= bound, `writeLayer used ${seen.size} chunk buffers for ~21 MiB (bound ${bound})`);
  } finally {
    rmrf(base);
  }
});
