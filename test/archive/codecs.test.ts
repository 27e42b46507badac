// The streaming codecs (lib/archive/codecs.ts, compression.ts): gunzip with ISA-L, with the
// addon's zlib and with node:zlib; zstd through libzstd and through the zstd program. They read
// what GNU gzip, pigz and zstd write (several gzip members, header fields, concatenated zstd
// frames); those programs read what we write; zstd output is the same bytes on any number of
// threads; corrupt or cut input is a ContentError saying how far it got; memory stays bounded
// however far the data inflates.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { codecAddon, gzipCodec, zstdCodec, type GzipCodec, type ZstdCodec } from '../../lib/archive/codecs';
import { AutoDecompress, compressStream, decompressStream } from '../../lib/archive/compression';
import { ContentError, HostError, UsageError } from '../../lib/util/errors';
import { addonPath } from '../../lib/host/index';
import { noise, sample } from './samples';
import { tmp, rmrf } from './helpers';

const addon = codecAddon()!;
const threadsBefore = addon.codecThreads();
after(() => addon.codecThreads(threadsBefore));

const GUNZIPS: GzipCodec[] = [...(addon.codecVersions.isal ? (['isal'] as const) : []), 'zlib', 'node'];
const ZSTDS: ZstdCodec[] = [...(addon.codecVersions.zstd ? (['libzstd'] as const) : []), 'program'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function prog(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// Through `stream` in odd-sized pieces, so members, frames and headers straddle writes.
async function through(stream: Duplex, input: Buffer): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let off = 0, k = 0; off < input.length; k++) {
    const n = [1, 3, 4093, 65536, 200001][k % 5];
    pieces.push(input.subarray(off, off + n));
    off += n;
  }
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), stream, new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

// A gzip member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC), built by hand.
function fancyGzip(data: Buffer): Buffer {
  const extra = Buffer.from([0x41, 0x70, 4, 0, 1, 2, 3, 4]); // one subfield "Ap", 4 bytes
  const head = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3]),
    Buffer.from([extra.length, 0]),
    extra,
    Buffer.from('layer.tar\0'),
    Buffer.from('a comment\0'),
  ]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(zlib.crc32(head) & 0xffff);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, hcrc, zlib.deflateRawSync(data), trailer]);
}

const compressible = sample(3 * 1024 * 1024 + 17);
const random = noise(256 * 1024);

for (const codec of GUNZIPS) {
  test(`gunzip ${codec}: reads gzip -1/-9, pigz, several members, every header field; empty and 1-byte data`, async () => {
    const cases: Array<[string, Buffer, Buffer]> = [
      ['gzip -1', prog('gzip', ['-1', '-c'], compressible), compressible],
      ['gzip -9 random', prog('gzip', ['-9', '-c'], random), random],
      ['pigz', prog('pigz', ['-c', '-p', '2', '-b', '128'], compressible), compressible],
      ['empty', prog('gzip', ['-c'], Buffer.alloc(0)), Buffer.alloc(0)],
      ['1 byte', prog('gzip', ['-c'], Buffer.from('x')), Buffer.from('x')],
      ['header fields', fancyGzip(compressible), compressible],
    ];
    // members: what `cat a.gz b.gz` and pigz --independent make; an empty member in the middle
    const members = [compressible.subarray(0, 100000), Buffer.alloc(0), random, compressible.subarray(5)];
    cases.push(['4 members', Buffer.concat(members.map((m) => prog('gzip', ['-c'], m))), Buffer.concat(members)]);
    for (const [name, gz, want] of cases) {
      const got = await through(decompressStream('gzip', { gzip: codec }), gz);
      assert.equal(sha(got), sha(want), name);
    }
  });

  test(`gunzip ${codec}: a bad CRC, a bad length, a cut stream and data after a member are ContentErrors`, async () => {
    const gz = prog('gzip', ['-c'], compressible);
    const flip = (at: number) => {
      const b = Buffer.from(gz);
      b[at] ^= 0x55;
      return b;
    };
    const cases: Array<[string, Buffer, RegExp]> = [
      ['bad CRC', flip(gz.length - 8), /corrupt after \d+ compressed bytes/],
      ['bad length', flip(gz.length - 2), /corrupt after \d+ compressed bytes/],
      ['cut', gz.subarray(0, gz.length - 100), /corrupt after \d+ compressed bytes/],
      ['cut in the trailer', gz.subarray(0, gz.length - 3), /corrupt after \d+ compressed bytes/],
      ['bad deflate', flip(5000), /corrupt after \d+ compressed bytes/],
      ['bad header CRC', (() => { const f = fancyGzip(compressible); f[30] ^= 1; return f; })(), /corrupt after \d+ compressed bytes/],
    ];
    if (codec !== 'node') cases.push(['data after a member', Buffer.concat([gz, Buffer.from('garbage!')]), /after the end of a gzip member/]);
    for (const [name, bad, msg] of cases) {
      await assert.rejects(through(decompressStream('gzip', { gzip: codec }), bad), (err: Error) => {
        assert.ok(err instanceof ContentError, `${name}: ${err.stack}`);
        assert.match(err.message, /^gzip data is corrupt/, name);
        assert.match(err.message, msg, name);
        return true;
      });
    }
    if (codec !== 'node') {
      // it says how far it got: a cut stream names the bytes read and decompressed before the cut
      const cut = gz.subarray(0, 300000);
      await assert.rejects(through(decompressStream('gzip', { gzip: codec }), cut), /after 300000 compressed bytes \(\d+ bytes decompressed\): the gzip stream is truncated/);
    }
  });
}

test('gzip writes every gzip reader reads: GNU gzip, pigz, and our own gunzips', async () => {
  for (const data of [compressible, random, Buffer.alloc(0), Buffer.from('y')]) {
    const gz = await through(compressStream('gzip'), data);
    assert.equal(sha(prog('gzip', ['-dc'], gz)), sha(data));
    assert.equal(sha(prog('pigz', ['-dc'], gz)), sha(data));
    for (const codec of GUNZIPS) assert.equal(sha(await through(decompressStream('gzip', { gzip: codec }), gz)), sha(data), codec);
  }
});

for (const codec of ZSTDS) {
  test(`zstd ${codec}: round trips; zstd -d reads ours; we read zstd -T0, concatenated frames`, async () => {
    for (const data of [compressible, random, Buffer.alloc(0), Buffer.from('z')]) {
      const z = await through(compressStream('zstd', 3, { zstd: codec }), data);
      assert.equal(sha(prog('zstd', ['-dc', '-q'], z)), sha(data));
      assert.equal(sha(await through(decompressStream('zstd', { zstd: codec }), z)), sha(data));
    }
    const frames = [compressible.subarray(0, 70000), random, compressible];
    const cat = Buffer.concat([prog('zstd', ['-c', '-q', '-T0', '-3'], frames[0]), prog('zstd', ['-c', '-q', '-19'], frames[1]), prog('zstd', ['-c', '-q', '--no-check'], frames[2])]);
    assert.equal(sha(await through(decompressStream('zstd', { zstd: codec }), cat)), sha(Buffer.concat(frames)));
  });

  test(`zstd ${codec}: a bad checksum or a cut frame is a ContentError`, async () => {
    const z = prog('zstd', ['-c', '-q', '-3'], compressible);
    const badSum = Buffer.from(z);
    badSum[badSum.length - 1] ^= 1; // the content checksum closes the frame
    for (const [name, bad] of [
      ['bad checksum', badSum],
      ['cut', z.subarray(0, z.length - 50)],
    ] as const) {
      await assert.rejects(through(decompressStream('zstd', { zstd: codec }), bad), (err: Error) => {
        assert.ok(err instanceof ContentError, `${name}: ${err.stack}`);
        return true;
      });
    }
  });
}

test('zstd in the addon: the same bytes on 1, 2 or 4 threads and however the input is cut', { skip: !addon.codecVersions.zstd && 'this addon was built without libzstd' }, async () => {
  const data = Buffer.concat([compressible, random, compressible]); // several of zstd's jobs
  const outs: string[] = [];
  for (const threads of [1, 2, 4]) {
    addon.codecThreads(threads);
    outs.push(sha(await through(compressStream('zstd', 3, { zstd: 'libzstd' }), data)));
  }
  const whole: Buffer[] = [];
  await pipeline(Readable.from([data]), compressStream('zstd', 3, { zstd: 'libzstd' }), new Writable({ write: (c, _e, cb) => (whole.push(c), cb()) }));
  outs.push(sha(Buffer.concat(whole)));
  addon.codecThreads(threadsBefore);
  assert.deepEqual(new Set(outs).size, 1, outs.join(' '));
});

test('AutoDecompress picks the format from the first bytes, with any codec', async () => {
  for (const c of GUNZIPS) assert.equal(sha(await through(new AutoDecompress({ gzip: c }), prog('gzip', ['-c'], compressible))), sha(compressible), c);
  for (const c of ZSTDS) assert.equal(sha(await through(new AutoDecompress({ zstd: c }), prog('zstd', ['-c', '-q'], compressible))), sha(compressible), c);
  assert.equal(sha(await through(new AutoDecompress(), compressible)), sha(compressible));
});

test('IMG_GZIP_CODEC / IMG_ZSTD_CODEC choose the fallbacks; unknown names are usage errors', () => {
  const saved = { g: process.env.IMG_GZIP_CODEC, z: process.env.IMG_ZSTD_CODEC };
  try {
    delete process.env.IMG_GZIP_CODEC;
    delete process.env.IMG_ZSTD_CODEC;
    assert.equal(gzipCodec(), GUNZIPS[0]);
    assert.equal(zstdCodec(), ZSTDS[0]);
    process.env.IMG_GZIP_CODEC = 'zlib';
    process.env.IMG_ZSTD_CODEC = 'program';
    assert.equal(gzipCodec(), 'zlib');
    assert.equal(zstdCodec(), 'program');
    assert.equal(gzipCodec('node'), 'node', 'an explicit choice wins over the environment');
    process.env.IMG_GZIP_CODEC = 'pigz';
    assert.throws(() => gzipCodec(), (err: Error) => err instanceof UsageError && /IMG_GZIP_CODEC=pigz/.test(err.message) && /isal, zlib, node/.test((err as UsageError).hint!));
    if (!addon.codecVersions.isal) assert.throws(() => gzipCodec('isal'), HostError);
  } finally {
    for (const [k, v] of [['IMG_GZIP_CODEC', saved.g], ['IMG_ZSTD_CODEC', saved.z]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('output pieces do not pin buffers much bigger than themselves', async () => {
  // Downstream, only a piece's length counts against high-water marks: a 1 KiB view of a
  // 1 MiB buffer would let a queue of them hold a thousand times its budget.
  const zeros = Buffer.alloc(8 << 20);
  const streams: Array<[string, Duplex]> = [
    ...GUNZIPS.filter((c) => c !== 'node').map((c) => [`gzip ${c}`, compressStream('gzip', 1, { gzip: c })] as [string, Duplex]),
    ...ZSTDS.filter((c) => c === 'libzstd').map((c) => [`zstd ${c}`, compressStream('zstd', 3, { zstd: c })] as [string, Duplex]),
    ...GUNZIPS.filter((c) => c !== 'node').map((c) => [`gunzip ${c}`, decompressStream('gzip', { gzip: c })] as [string, Duplex]),
  ];
  for (const [name, stream] of streams) {
    const input = name.startsWith('gunzip') ? zlib.gzipSync(zeros, { level: 1 }) : zeros;
    const pieces: Buffer[] = [];
    await pipeline(Readable.from([input]), stream, new Writable({ write: (c: Buffer, _e, cb) => (pieces.push(c), cb()) }));
    assert.ok(pieces.length > 0, name);
    for (const p of pieces) assert.ok(p.buffer.byteLength <= Math.max(2 * p.length, 8192), `${name}: a ${p.length}-byte piece holds ${p.buffer.byteLength} bytes`);
  }
});

test('a gzip bomb inflates no faster than it is read', async () => {
  // 128 MiB of zeros is ~130 KiB of gzip; with the reader paused, only a few buffers inflate
  const bomb = zlib.gzipSync(Buffer.alloc(128 << 20), { level: 1 });
  for (const codec of GUNZIPS.filter((c) => c !== 'node')) {
    const d = decompressStream('gzip', { gzip: codec });
    let got = 0;
    let paused = false;
    d.on('data', (c: Buffer) => {
      got += c.length;
      if (!paused && got >= 8 << 20) {
        paused = true;
        d.pause();
      }
    });
    d.end(bomb);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(got < 16 << 20, `${codec}: ${got} bytes inflated while paused`);
    assert.ok(d.readableLength <= 2 << 20, `${codec}: ${d.readableLength} bytes buffered`);
    const done = new Promise((r) => d.on('end', r));
    d.resume();
    await done;
    assert.equal(got, 128 << 20, codec);
  }
});

test('256 MiB through gzip and gunzip, and zstd both ways, in bounded memory', () => {
  // A fresh child, so the runner's heap does not blur the kernel's high-water mark; it collects
  // garbage every 32 MiB out, so the mark shows what the streams hold, not the collector's slack.
  const dir = tmp();
  try {
    const script = path.join(dir, 'stream.ts');
    fs.writeFileSync(
      script,
      `
      const fs = require('node:fs');
      const { Readable, Writable } = require('node:stream');
      const { pipeline } = require('node:stream/promises');
      const { compressStream, decompressStream } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/archive/compression.ts'))});
      const hwm = () => Number(/VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const block = Buffer.alloc(1 << 20);
      block.write('img!', 4096);
      function* gen(n) { for (let i = 0; i < n; i++) yield block; }
      async function run(c, mib) {
        let n = 0;
        const sink = new Writable({ write: (b, e, cb) => { n += b.length; if (n % (32 << 20) < b.length) gc(); cb(); } });
        await pipeline(Readable.from(gen(mib)), compressStream(c), decompressStream(c), sink);
        return n;
      }
      (async () => {
        await run('gzip', 32); // warm: the pool's threads, zstd's contexts and job buffers
        await run('zstd', 64);
        const base = hwm();
        const gz = await run('gzip', 256);
        const zs = await run('zstd', 256);
        console.log(JSON.stringify({ base, peak: hwm(), gz, zs }));
      })().catch((e) => { console.error(e); process.exit(1); });
      `,
    );
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], { encoding: 'utf8', timeout: 300_000, cwd: path.resolve(__dirname, '../..') });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(m.gz, 256 << 20);
    assert.equal(m.zs, 256 << 20);
    const grew = (m.peak - m.base) / (1 << 20);
    assert.ok(grew < 32, `RSS grew ${grew.toFixed(0)} MiB streaming 512 MiB`);
  } finally {
    rmrf(dir);
  }
});

test('a process exits cleanly right after its last codec job, even on one CPU', () => {
  // On one CPU the pool thread that delivered the last result is preempted by the JS thread,
  // which settles it and tears the environment down at once: the pool must not touch the
  // environment's thread-safe function after that (it did, and Node aborted at exit).
  const script = `
    const m = { exports: {} };
    process.dlopen(m, ${JSON.stringify(addonPath())});
    const data = Buffer.alloc(64 << 10, 7);
    (async () => { for (let i = 0; i < 3; i++) await m.exports.deflateChunk('zlib', 1, data, null, true); })();
  `;
  for (let i = 0; i < 5; i++) {
    const r = spawnSync('taskset', ['-c', '0', process.execPath, '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.signal, null, `run ${i}: killed by ${r.signal} ${r.stderr}`);
    assert.equal(r.status, 0, `run ${i}: ${r.stderr}`);
  }
});

test('where libisal.so.2 and libzstd.so.1 are missing, the same addon loads and falls back to zlib and the zstd program', {
  skip: process.getuid?.() !== 0 ? 'hides the libraries with bind mounts in a private mount namespace: needs root (CI runs as root)' : false,
}, () => {
  // the libraries' files, as the dynamic loader finds them
  const libs = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => /^\s*(libisal\.so\.2|libzstd\.so\.1) \(.*\) => (\S+)$/.exec(l)?.[2])
    .filter((p): p is string => !!p);
  const script = `
    const { codecAddon, gzipCodec, zstdCodec } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/archive/codecs.ts'))});
    const { compressStream, decompressStream } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/archive/compression.ts'))});
    const { Readable, Writable } = require('node:stream');
    const { pipeline } = require('node:stream/promises');
    const data = Buffer.from('hello, layer\\n'.repeat(100000));
    const roundTrip = async (c) => {
      const out = [];
      await pipeline(Readable.from([data]), compressStream(c), decompressStream(c), new Writable({ write: (b, e, cb) => (out.push(b), cb()) }));
      return Buffer.concat(out).equals(data);
    };
    (async () => console.log(JSON.stringify({ versions: codecAddon().codecVersions, gzip: gzipCodec(), zstd: zstdCodec(), gz: await roundTrip('gzip'), zs: await roundTrip('zstd') })))();
  `;
  const hide = libs.map((l) => `mount --bind /dev/null '${l}'`).join(' && ');
  const r = spawnSync('unshare', ['--mount', 'sh', '-c', `${hide || 'true'} && exec "$0" --import tsx -e "$1"`, process.execPath, script], {
    encoding: 'utf8',
    cwd: path.resolve(__dirname, '../..'),
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(m.versions.isal, undefined);
  assert.equal(m.versions.zstd, undefined);
  assert.match(m.versions.zlib, /^\d+\.\d+/);
  assert.equal(m.gzip, 'zlib');
  assert.equal(m.zstd, 'program');
  assert.equal(m.gz, true);
  assert.equal(m.zs, true);
});
