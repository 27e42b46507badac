// The l*xattr family on files and on symlinks themselves (never their targets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../../lib/host';

const addon = loadAddon();

test('lsetxattr / lgetxattr / llistxattr / lremovexattr round-trip', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-xattr-'));
  try {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, '');
    const big = Buffer.alloc(3000, 7); // larger than the first read buffer
    addon.lsetxattr(f, 'user.one', Buffer.from('1'));
    addon.lsetxattr(f, 'user.big', big);
    addon.lsetxattr(f, 'user.empty', Buffer.alloc(0));
    assert.deepEqual(addon.lgetxattr(f, 'user.one'), Buffer.from('1'));
    assert.deepEqual(addon.lgetxattr(f, 'user.big'), big);
    assert.deepEqual(addon.lgetxattr(f, 'user.empty'), Buffer.alloc(0));
    assert.equal(addon.lgetxattr(f, 'user.absent'), null);
    assert.deepEqual(addon.llistxattr(f).filter((n) => n.startsWith('user.')).sort(), ['user.big', 'user.empty', 'user.one']);
    addon.lremovexattr(f, 'user.one');
    assert.equal(addon.lgetxattr(f, 'user.one'), null);
    assert.throws(() => addon.lremovexattr(f, 'user.one'), { code: 'ENODATA' });
    assert.throws(() => addon.llistxattr(path.join(dir, 'missing')), { code: 'ENOENT' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('trusted.* xattrs on a symlink (root only: user.* is not allowed on links)', { skip: process.getuid?.() !== 0 && 'trusted.* needs CAP_SYS_ADMIN' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-xattr-'));
  try {
    const target = path.join(dir, 't');
    fs.writeFileSync(target, '');
    const link = path.join(dir, 'l');
    fs.symlinkSync('t', link);
    addon.lsetxattr(link, 'trusted.overlay.opaque', Buffer.from('y'));
    assert.deepEqual(addon.lgetxattr(link, 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(addon.lgetxattr(target, 'trusted.overlay.opaque'), null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
