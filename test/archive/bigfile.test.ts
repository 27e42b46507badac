import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmp, rmrf } from './helpers';

// Applying layers with their owners, device nodes and setuid bits needs root (CI runs the
// suite as root); the unprivileged path is covered by test/archive/rootless.test.ts.
const AS_ROOT = {
  skip: process.getuid?.() !== 0 ? 'needs root to apply owners, devices and setuid bits (unprivileged path: test/archive/rootless.test.ts)' : false,
};

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

// Memory is measured in a fresh child so the test runner's own heap does not blur it.
test('a 2 GiB file applies and is written back with bounded memory', AS_ROOT, () => {
  const root = tmp();
  try {
    const size = 2 * GiB + 12345;
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'bigfile-child.ts'), root, String(size)], {
      encoding: 'utf8',
      timeout: 300_000,
      killSignal: 'SIGKILL',
    });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const growApply = (m.afterApply - m.baseline) / MiB;
    const grow = (m.peak - m.baseline) / MiB;
    assert.ok(growApply < 200, `RSS grew ${growApply.toFixed(0)} MiB while applying`);
    assert.ok(grow < 200, `RSS grew ${grow.toFixed(0)} MiB overall`);
    assert.equal(m.applied.size, 512 + size + (512 - (size % 512)) + 1024);
    assert.equal(m.blob.uncompressedSize, 512 + size + (512 - (size % 512)) + 1024);
    assert.equal(m.blob.size, m.blobBytes);
    const f = path.join(root, 'big.bin');
    const st = fs.statSync(f);
    assert.equal(st.size, size);
    // zero runs became holes
    assert.ok(st.blocks * 512 < 64 * MiB, `file uses ${st.blocks * 512} bytes on disk`);
    // the markers landed at their offsets
    const fd = fs.openSync(f, 'r');
    const b = Buffer.alloc(8);
    for (const off of [0, 256 * MiB, 2 * GiB - 256 * MiB]) {
      fs.readSync(fd, b, 0, 8, off);
      assert.equal(b.toString(), 'img!img!', `marker at ${off}`);
    }
    fs.readSync(fd, b, 0, 8, 100 * MiB);
    assert.deepEqual(b, Buffer.alloc(8));
    fs.closeSync(fd);
  } finally {
    rmrf(root);
  }
});
