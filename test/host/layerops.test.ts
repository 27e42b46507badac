// The addon's layer work off the JS thread (addon/layerio.cc via lib/host/layerops.ts):
// SHA-256 held to node:crypto in both its implementations, and the queued file writes
// leaving files exactly as the synchronous path would (data, holes, owners, odd modes,
// times, names that are not UTF-8), a failure naming its operation and closing every file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadAddon } from '../../lib/host/index';
import { LayerOpFailure, LayerOpQueue, Sha256Stream } from '../../lib/host/layerops';

const addon = loadAddon();
const AS_ROOT = { skip: process.getuid?.() !== 0 ? 'needs root to give files other owners' : false };

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

// Lengths around the 64-byte block and the 56-byte padding edge, and a large odd one.
const LENGTHS = [0, 1, 3, 55, 56, 57, 63, 64, 65, 111, 119, 120, 127, 128, 129, 1000, (1 << 20) + 7];

test('Sha256 (OpenSSL through Node, and the portable one) agrees with node:crypto', () => {
  const data = randomBytes((1 << 20) + 7);
  assert.equal(new addon.Sha256!().implementation, 'openssl', 'this Node exports OpenSSL: the addon should use it');
  for (const n of LENGTHS) {
    const b = data.subarray(0, n);
    assert.equal(new addon.Sha256!().update(b).digest(), sha(b), `one update of ${n} bytes`);
  }
  // The portable implementation, in a process that asks for it; split updates cross block edges.
  const script = `
    const { createHash } = require('node:crypto');
    const a = require(process.argv[1]);
    const out = [];
    for (const n of ${JSON.stringify(LENGTHS)}) {
      const b = Buffer.alloc(n, 0).map((_, i) => (i * 131 + 7) & 255);
      const h = new a.Sha256();
      for (let off = 0, step = 1; off < n; off += step, step = step * 3 + 1) h.update(b.subarray(off, Math.min(n, off + step)));
      out.push([h.implementation, h.digest(), createHash('sha256').update(b).digest('hex')]);
    }
    console.log(JSON.stringify(out));`;
  const addonFile = path.resolve(__dirname, '../../build/Release/img_addon.node');
  const rows = JSON.parse(execFileSync(process.execPath, ['-e', script, addonFile], { env: { ...process.env, IMG_SHA256_PORTABLE: '1' } }).toString()) as string[][];
  assert.equal(rows.length, LENGTHS.length);
  for (const [i, [impl, got, want]] of rows.entries()) {
    assert.equal(impl, 'portable');
    assert.equal(got, want, `portable, ${LENGTHS[i]} bytes in split updates`);
  }
  const h = new addon.Sha256!();
  h.digest();
  assert.throws(() => h.digest(), /digest\(\) was called already/);
});

test('Sha256Stream hashes many chunks in order off the JS thread', async () => {
  const chunks = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 7919) % 70000)));
  const s = new Sha256Stream();
  for (const c of chunks) {
    s.update(c);
    await s.waitBelow(256 * 1024);
  }
  assert.equal(await s.digest(), sha(Buffer.concat(chunks)));
});

test('queued writes leave files as written here: data, holes, owners, odd modes, times, byte names', AS_ROOT, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-layerops-'));
  try {
    const q = new LayerOpQueue(true);
    assert.equal(q.offThread, true);
    const files: { name: Buffer; data: Buffer; mode: number; uid: number; gid: number; mtime: number; hole: number }[] = [];
    for (let i = 0; i < 40; i++) {
      files.push({
        // not UTF-8: names stay bytes end to end
        name: Buffer.concat([Buffer.from(`f${i}-`), Buffer.from([0xff, 0xfe, 0x80 + i])]),
        data: randomBytes(i === 0 ? 0 : 1 + ((i * 104729) % 300000)),
        mode: [0o4755, 0o2711, 0o1600, 0o000, 0o644, 0o6777][i % 6],
        uid: 1000 + i,
        gid: 2000 + (i % 3),
        mtime: 1_600_000_000 + i + 0.25,
        hole: i % 5 === 0 ? 70000 : 0, // ends in a hole: the length comes from the truncate
      });
    }
    const all: Buffer[] = [];
    for (const f of files) {
      const p = Buffer.concat([Buffer.from(dir + '/'), f.name]);
      const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      // in two writes from one chunk, like the tar parser's body pieces
      const half = f.data.length >> 1;
      q.write(fd, f.data, 0, half, 0, `entry ${f.name.toString('latin1')}`);
      q.write(fd, f.data, half, f.data.length, half, `entry ${f.name.toString('latin1')}`);
      const size = f.data.length + f.hole;
      q.finish(fd, { chown: true, uid: f.uid, gid: f.gid, mode: f.mode, mtime: f.mtime, truncateTo: f.hole ? size : null }, 'x');
      q.hash(f.data);
      all.push(f.data);
    }
    await q.flush();
    assert.equal(q.filesOpen, 0);
    assert.equal(q.digest(), sha(Buffer.concat(all)));
    for (const f of files) {
      const p = Buffer.concat([Buffer.from(dir + '/'), f.name]);
      const st = fs.lstatSync(p);
      const body = fs.readFileSync(p);
      assert.equal(body.length, f.data.length + f.hole);
      assert.ok(body.subarray(0, f.data.length).equals(f.data), `${f.name.toString('latin1')}: data`);
      assert.ok(body.subarray(f.data.length).every((b) => b === 0), 'the hole reads as zeros');
      assert.equal(st.mode & 0o7777, f.mode, `${f.name.toString('latin1')}: mode ${f.mode.toString(8)} (set after chown, which clears setuid)`);
      assert.deepEqual([st.uid, st.gid], [f.uid, f.gid]);
      assert.equal(st.mtimeMs, f.mtime * 1000);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed operation names its entry, stops the queue and still closes every file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-layerops-'));
  try {
    const q = new LayerOpQueue(false);
    const fds: number[] = [];
    for (let i = 0; i < 5; i++) {
      // file 2 is opened read-only: its write fails with EBADF
      if (i === 2) fs.writeFileSync(path.join(dir, 'f2'), '');
      fds.push(fs.openSync(path.join(dir, `f${i}`), i === 2 ? 'r' : 'w', 0o600));
    }
    const data = Buffer.from('payload');
    for (let i = 0; i < 5; i++) {
      q.write(fds[i], data, 0, data.length, 0, `file ${i}`);
      q.finish(fds[i], { chown: false, uid: 0, gid: 0, mode: 0o640, mtime: 1_700_000_000, truncateTo: null }, `file ${i}`);
    }
    await assert.rejects(q.flush(), (err: unknown) => {
      assert.ok(err instanceof LayerOpFailure);
      assert.equal(err.label, 'file 2');
      assert.equal(err.error.code, 'EBADF');
      assert.equal(err.error.syscall, 'write');
      return true;
    });
    assert.equal(q.failure()?.label, 'file 2');
    assert.equal(q.filesOpen, 0);
    for (const fd of fds) assert.throws(() => fs.fstatSync(fd), { code: 'EBADF' }, `fd ${fd} is closed`);
    // before the failure: written and finished; after it: nothing written
    assert.equal(fs.readFileSync(path.join(dir, 'f1'), 'utf8'), 'payload');
    assert.equal(fs.statSync(path.join(dir, 'f1')).mode & 0o777, 0o640);
    assert.equal(fs.readFileSync(path.join(dir, 'f4'), 'utf8'), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
