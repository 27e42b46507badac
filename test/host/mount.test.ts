// mount/umount of a tmpfs (and kernel overlayfs with userxattr) inside the
// user namespace the unprivileged test user enters through enterUserNamespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { entryArgv, removeDir, runUnprivileged, userDir } from './fixtures/unprivileged';
import { loadAddon } from '../../lib/host';

test('mount/umount a tmpfs and an overlayfs inside the namespace', async () => {
  const dir = userDir('img-mount-');
  try {
    const r = await runUnprivileged(entryArgv('mount', dir), dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.uid, 0);
    assert.equal(out.mountedTmpfs, true);
    assert.deepEqual(out.overlayUpper, ['a', 'b']);
    assert.equal(out.whiteoutIsChar, true);
    assert.equal(out.unmounted, true);
    assert.equal(out.tmpfsGone, true);
    // Nothing leaked into the host's mount namespace.
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dir));
  } finally {
    await removeDir(dir);
  }
});

test('mount errors carry errno and target', () => {
  assert.throws(() => loadAddon().umount('/nonexistent-img-mount', 0), (err: NodeJS.ErrnoException) => {
    assert.ok(err.code === 'ENOENT' || err.code === 'EPERM');
    assert.equal(err.path, '/nonexistent-img-mount');
    return true;
  });
});
