// copyFile: bytes and mode arrive intact, on one filesystem and across two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../../lib/host';

const addon = loadAddon();

function tmp(base = os.tmpdir()): string {
  return fs.mkdtempSync(path.join(base, 'img-copyfile-'));
}

test('copyFile copies bytes and applies the mode regardless of umask', async () => {
  const dir = tmp();
  try {
    const src = path.join(dir, 'src');
    const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
    fs.writeFileSync(src, data);
    const dst = path.join(dir, 'dst');
    const n = await addon.copyFile(src, dst, 0o4755);
    assert.equal(n, data.length);
    assert.deepEqual(fs.readFileSync(dst), data);
    assert.equal(fs.statSync(dst).mode & 0o7777, 0o4755);
    // An existing destination is truncated.
    fs.writeFileSync(path.join(dir, 'small'), 'hi');
    assert.equal(await addon.copyFile(path.join(dir, 'small'), dst, 0o600), 2);
    assert.equal(fs.readFileSync(dst, 'utf8'), 'hi');
    assert.equal(fs.statSync(dst).mode & 0o7777, 0o600);
    // Empty files are fine too.
    fs.writeFileSync(path.join(dir, 'empty'), '');
    assert.equal(await addon.copyFile(path.join(dir, 'empty'), path.join(dir, 'e2'), 0o644), 0);
    assert.equal(fs.statSync(path.join(dir, 'e2')).size, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('copyFile works across filesystems (disk → tmpfs)', { skip: !fs.existsSync('/dev/shm') && 'no /dev/shm tmpfs here' }, async () => {
  const a = tmp();
  const b = tmp('/dev/shm');
  try {
    const data = crypto.randomBytes(200_000);
    fs.writeFileSync(path.join(a, 'f'), data);
    assert.equal(await addon.copyFile(path.join(a, 'f'), path.join(b, 'f'), 0o640), data.length);
    assert.deepEqual(fs.readFileSync(path.join(b, 'f')), data);
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  }
});

test('copyFile errors carry the errno code and the path', async () => {
  const dir = tmp();
  try {
    await assert.rejects(addon.copyFile(path.join(dir, 'nope'), path.join(dir, 'x'), 0o644), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.path, path.join(dir, 'nope'));
      return true;
    });
    await assert.rejects(addon.copyFile(dir, path.join(dir, 'x'), 0o644), { code: 'EINVAL' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
