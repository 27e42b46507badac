// mknod: fifos for anyone; character devices when root (as in a real rootfs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon, makedev } from '../../lib/host';

const addon = loadAddon();
const isRoot = process.getuid?.() === 0;

test('mknod makes a fifo with the asked mode', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-mknod-'));
  try {
    const p = path.join(dir, 'fifo');
    addon.mknod(p, fs.constants.S_IFIFO | 0o600, 0);
    const st = fs.lstatSync(p);
    assert.ok(st.isFIFO());
    assert.throws(() => addon.mknod(p, fs.constants.S_IFIFO | 0o600, 0), { code: 'EEXIST' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('mknod makes a character device with major/minor', { skip: !isRoot && 'creating device nodes needs real root' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-mknod-'));
  try {
    const p = path.join(dir, 'null');
    addon.mknod(p, fs.constants.S_IFCHR | 0o666, makedev(1, 3));
    const st = fs.lstatSync(p);
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, fs.statSync('/dev/null').rdev);
    // A large minor exercises the split encoding of dev_t.
    addon.mknod(path.join(dir, 'big'), fs.constants.S_IFCHR | 0o600, makedev(300, 70000));
    assert.equal(fs.lstatSync(path.join(dir, 'big')).rdev, makedev(300, 70000));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
