// File names are bytes (issue 13, item 3). Layers written block by block in
// test/fixtures/layers.ts (not with img's tar codec) carry names that are not
// UTF-8 — 0xff, 0xfe, the invalid pair 0xc3 0x28 — in the ustar name field, in
// PAX path/linkpath records, as symlink targets, hard-link targets and whiteouts.
// They must come out of apply, diff, `img unpack` and every build output exactly
// as they went in, and two names differing only in those bytes stay two files.
// GNU tar (`--quoting-style=literal`) reads the tars img writes: an independent reader.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { applyLayer } from '../../lib/archive/apply';
import { compareDirs, overlayChanges, writeLayer } from '../../lib/archive/diff';
import { ImgError } from '../../lib/util/errors';
import { busyboxLayerTar, imageFromLayers } from '../fixtures/images';
import { byteNamesTar, type ByteEntry } from '../fixtures/layers';
import { build, setup } from '../builder/helpers';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless } from '../helpers/rootless';
import { rmrf, tmp } from './helpers';
import { overlayFormat } from '../../lib/archive/overlay-format';

const b = (...parts: Array<string | number[] | Buffer>): Buffer => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

const DIR = b('d', [0xff]);
const A_FF = b('a', [0xff]);
const A_FE = b('a', [0xfe]);
const C328 = b([0xc3, 0x28], '.txt');
const LONG = b('long-', 'x'.repeat(120), [0xff, 0xc3]); // only a PAX path record can hold it
const GONE = b('gone', [0xff]);

// Layer 1: the names; layer 2: a whiteout of one of them (by bytes).
const LAYER1: ByteEntry[] = [
  { name: b(DIR, '/'), typeflag: '5' },
  { name: b(DIR, '/', A_FF), typeflag: '0', body: Buffer.from('one') },
  { name: b(DIR, '/', A_FE), typeflag: '0', body: Buffer.from('two') },
  { name: C328, typeflag: '0', body: Buffer.from('c3 28') },
  { name: LONG, typeflag: '0', body: Buffer.from('long') },
  { name: b('l', [0xff]), typeflag: '2', linkname: b(DIR, '/', A_FF) },
  { name: b('h', [0xff]), typeflag: '1', linkname: b(DIR, '/', A_FE) },
  { name: GONE, typeflag: '0', body: Buffer.from('to be deleted') },
];
const LAYER2: ByteEntry[] = [{ name: b('.wh.', GONE), typeflag: '0' }];

/** Names (as raw bytes, hex) of what GNU tar lists in a tar file, without './' and '/'. */
function tarNames(file: string): string[] {
  const out = execFileSync('tar', ['--quoting-style=literal', '-tf', file]);
  const names: string[] = [];
  let start = 0;
  for (let i = 0; i <= out.length; i++) {
    if (i === out.length || out[i] === 0x0a) {
      let n = out.subarray(start, i);
      start = i + 1;
      if (n.length === 0) continue;
      if (n[0] === 0x2e && n[1] === 0x2f) n = n.subarray(2);
      if (n[n.length - 1] === 0x2f) n = n.subarray(0, n.length - 1);
      if (n.length) names.push(n.toString('hex'));
    }
  }
  return names.sort();
}

const hex = (...names: Buffer[]) => names.map((n) => n.toString('hex')).sort();
const join = (root: string, ...parts: Buffer[]) => Buffer.concat([Buffer.from(root + '/'), ...parts.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p]))]);

// hardLinks: false for -o type=local, which copies each top-level entry on its own (links across them are not kept).
function checkTree(root: string, hardLinks = true): void {
  const top = fs.readdirSync(root, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort();
  for (const n of hex(DIR, C328, LONG, b('l', [0xff]), b('h', [0xff]))) assert.ok(top.includes(n), `${n} missing from ${top}`);
  assert.ok(!top.includes(GONE.toString('hex')), 'the whiteout (by bytes) removed its file');
  assert.deepEqual(fs.readdirSync(join(root, DIR), { encoding: 'buffer' }).map((n) => n.toString('hex')).sort(), hex(A_FF, A_FE), 'two names that differ only in invalid bytes stay two files');
  assert.equal(fs.readFileSync(join(root, DIR, A_FF), 'utf8'), 'one');
  assert.equal(fs.readFileSync(join(root, DIR, A_FE), 'utf8'), 'two');
  assert.equal(fs.readFileSync(join(root, C328), 'utf8'), 'c3 28');
  assert.equal(fs.readFileSync(join(root, LONG), 'utf8'), 'long');
  assert.deepEqual(fs.readlinkSync(join(root, b('l', [0xff])), { encoding: 'buffer' }), b(DIR, '/', A_FF));
  assert.equal(fs.readFileSync(join(root, b('h', [0xff])), 'utf8'), 'two', 'the hard link found its target by bytes');
  if (hardLinks) assert.equal(fs.statSync(join(root, b('h', [0xff]))).ino, fs.statSync(join(root, DIR, A_FE)).ino);
}

describe('names are bytes: apply and diff', () => {
  const dir = tmp('img-bytenames-');
  after(() => rmrf(dir));

  test('native apply writes every name exactly; the diff of the tree lists them exactly', async () => {
    const root = path.join(dir, 'native');
    for (const layer of [LAYER1, LAYER2]) await applyLayer(Readable.from([byteNamesTar(layer)]), { root, sameOwner: false });
    checkTree(root);
    const out = path.join(dir, 'native.tar');
    await pipeline(writeLayer(compareDirs(null, root), root) as Readable, fs.createWriteStream(out));
    assert.deepEqual(
      tarNames(out),
      hex(DIR, b(DIR, '/', A_FF), b(DIR, '/', A_FE), C328, LONG, b('l', [0xff]), b('h', [0xff])),
    );
    // ...and the tar img wrote applies back to the same tree.
    const again = path.join(dir, 'again');
    await applyLayer(fs.createReadStream(out), { root: again, sameOwner: false });
    checkTree(again);
  });

  test('overlay format: the upper dir keeps the names and the whiteout; its changes round-trip', async () => {
    const upper = path.join(dir, 'upper');
    await applyLayer(Readable.from([byteNamesTar(LAYER2)]), { root: upper, format: overlayFormat('overlayfs', true), sameOwner: false });
    const wh = fs.lstatSync(join(upper, GONE));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'the whiteout is a 0:0 device under the exact name');
    const out = path.join(dir, 'upper.tar');
    await pipeline(writeLayer(overlayChanges(upper, overlayFormat('overlayfs', true)), upper) as Readable, fs.createWriteStream(out));
    assert.deepEqual(tarNames(out), hex(b('.wh.', GONE)));
  });

  test('messages show such names readably, invalid bytes escaped', async () => {
    const bad = byteNamesTar([{ name: b('x', [0xff]), typeflag: '1', linkname: b('missing', [0xfe]) }]);
    await assert.rejects(applyLayer(Readable.from([bad]), { root: path.join(dir, 'bad'), sameOwner: false }), (err: unknown) => {
      assert.ok(err instanceof ImgError);
      assert.match(err.message, /layer entry "x\\\\xff": hard link target "missing\\\\xfe" does not exist/);
      return true;
    });
  });
});

describe('names are bytes: img unpack and build outputs (rootless)', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });

  test('unpack, and -o type=local, type=tar, type=oci of a build that adds one more such name', { timeout: 240_000 }, async () => {
    const e = await setup({ Dockerfile: 'FROM bytes\nRUN touch "$(printf \'/made-\\377\')"\n' });
    dirs.push(e.root);
    const image = imageFromLayers([await busyboxLayerTar(), byteNamesTar(LAYER1), byteNamesTar(LAYER2)]);
    await image.writeToStore(e.state, 'bytes');
    const user = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, e.state]);

    const unpacked = path.join(e.root, 'unpacked');
    const u = await runImgRootless(['-s', e.state, 'unpack', '-o', unpacked, 'bytes'], { timeoutMs: 120_000 });
    assert.equal(u.code, 0, u.stderr);
    checkTree(unpacked);

    const local = path.join(e.root, 'local');
    const tarOut = path.join(e.root, 'rootfs.tar');
    const ociOut = path.join(e.root, 'oci.tar');
    for (const o of [`type=local,dest=${local}`, `type=tar,dest=${tarOut}`, `type=oci,dest=${ociOut}`]) {
      const r = await build(e, ['-o', o, e.ctx]);
      assert.equal(r.code, 0, r.stderr);
    }
    checkTree(local, false);
    assert.ok(fs.existsSync(join(local, b('made-', [0xff]))));
    const listed = tarNames(tarOut);
    for (const n of hex(b(DIR, '/', A_FF), b(DIR, '/', A_FE), C328, LONG, b('made-', [0xff]))) assert.ok(listed.includes(n), `${n} missing from the rootfs tar`);

    // The OCI archive's last layer is the RUN's: its one new name, as bytes.
    const layout = path.join(e.root, 'layout');
    fs.mkdirSync(layout);
    execFileSync('tar', ['-xf', ociOut, '-C', layout]);
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const blob = (d: string) => fs.readFileSync(path.join(layout, 'blobs', 'sha256', d.slice(7)));
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    const last = path.join(e.root, 'last.tar');
    fs.writeFileSync(last, gunzipSync(blob(manifest.layers.at(-1).digest)));
    assert.deepEqual(tarNames(last), hex(b('made-', [0xff])));
  });
});
