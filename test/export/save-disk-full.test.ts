// img save -o onto a disk that fills: a DiskFullError naming the archive and the space
// left, the partial archive removed, the store untouched.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { saveImages } from '../../lib/export/save';
import { DiskFullError } from '../../lib/util/errors';
import { makeBusyboxImage } from '../fixtures/images';

const skip = process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root (CI runs the suite as root)';

test('save -o onto a full disk', { skip }, async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-save-full-'));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'img-save-full-out-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', out]);
  try {
    const img = await makeBusyboxImage(); // a 1 MiB layer
    await img.writeToStore(state, 'busybox');
    const dest = path.join(out, 'busybox.tar');
    await assert.rejects(saveImages(state, ['busybox'], { output: dest }), (err: Error & { hint?: string }) => {
      assert.ok(err instanceof DiskFullError, `${err.constructor.name}: ${err.message}`);
      assert.match(err.message, new RegExp(`^no space left for the archive for ${dest} \\(\\d+(\\.\\d+)?(B|KiB) free of 256KiB\\)$`));
      assert.equal(err.hint, 'free space on that disk, or save to another one (-o PATH); the partial archive was removed');
      return true;
    });
    assert.deepEqual(fs.readdirSync(out), [], 'no partial archive');
    const big = path.join(state, 'busybox.tar');
    await saveImages(state, ['busybox'], { output: big });
    assert.ok(fs.statSync(big).size > 1 << 20, 'the store still saves');
  } finally {
    execFileSync('umount', [out]);
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(state, { recursive: true, force: true });
  }
});
