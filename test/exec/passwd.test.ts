// resolveUser: USER values resolved in the image's /etc/passwd and /etc/group,
// never following symlinks out of the rootfs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { resolveUser } from '../../lib/exec/passwd';
import { resolveInRoot } from '../../lib/exec/mounts';
import { ImgError } from '../../lib/util/errors';

let root: string;
let outside: string;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'img-passwd-'));
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'img-passwd-out-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(
    path.join(root, 'etc', 'passwd'),
    ['root:x:0:0:root:/root:/bin/sh', '# comment', 'bob:x:1000:1000:Bob:/home/bob:/bin/sh', 'svc:x:999:50::/srv:/sbin/nologin', ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(root, 'etc', 'group'),
    ['root:x:0:', 'staff:x:50:', 'bob:x:1000:', 'wheel:x:10:bob,alice', 'docker:x:998:bob', ''].join('\n'),
  );
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('empty and root resolve to 0:0 with home /root', async () => {
  assert.deepEqual(await resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [0], home: '/root' });
  assert.deepEqual(await resolveUser(root, 'root'), { uid: 0, gid: 0, additionalGids: [0], home: '/root' });
});

test('a name gets its primary gid, home and supplementary groups (the primary one first, as BuildKit sets them)', async () => {
  assert.deepEqual(await resolveUser(root, 'bob'), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 998], home: '/home/bob' });
});

test('an explicit group replaces the primary gid and drops the other supplementary groups (as runc)', async () => {
  assert.deepEqual(await resolveUser(root, 'bob:staff'), { uid: 1000, gid: 50, additionalGids: [50], home: '/home/bob' });
  assert.deepEqual(await resolveUser(root, 'bob:4242'), { uid: 1000, gid: 4242, additionalGids: [4242], home: '/home/bob' });
});

test('numeric ids pass through; a listed uid picks up its passwd entry', async () => {
  assert.deepEqual(await resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  assert.deepEqual(await resolveUser(root, '4242:77'), { uid: 4242, gid: 77, additionalGids: [77], home: '/' });
  assert.deepEqual(await resolveUser(root, '999'), { uid: 999, gid: 50, additionalGids: [50], home: '/srv' });
});

test('unknown names are ImgErrors naming them', async () => {
  await assert.rejects(resolveUser(root, 'nobodyhere'), (err: unknown) => {
    assert.ok(err instanceof ImgError);
    assert.equal(err.message, 'unable to find user nobodyhere: no matching entries in passwd file');
    assert.ok(err.hint);
    return true;
  });
  await assert.rejects(resolveUser(root, 'bob:nogroup'), /unable to find group nogroup/);
});

test('a symlinked /etc/passwd cannot escape the rootfs', async () => {
  const r2 = fs.mkdtempSync(path.join(os.tmpdir(), 'img-passwd-esc-'));
  try {
    fs.writeFileSync(path.join(outside, 'passwd'), 'evil:x:0:0::/evil:/bin/sh\n');
    fs.mkdirSync(path.join(r2, 'etc'));
    // Absolute and ../ targets both resolve inside r2, where there is no such file.
    fs.symlinkSync(path.join(outside, 'passwd'), path.join(r2, 'etc', 'passwd'));
    fs.symlinkSync(`../../../../../../..${outside}/passwd`, path.join(r2, 'etc', 'group'));
    await assert.rejects(resolveUser(r2, 'evil'), /unable to find user evil/);
    assert.equal(await resolveInRoot(r2, '/etc/group'), path.join(r2, outside, 'passwd'));
    assert.equal(await resolveInRoot(r2, '/etc/passwd'), path.join(r2, outside, 'passwd'));
  } finally {
    fs.rmSync(r2, { recursive: true, force: true });
  }
});

test('symlink loops are reported', async () => {
  const r3 = fs.mkdtempSync(path.join(os.tmpdir(), 'img-passwd-loop-'));
  try {
    fs.symlinkSync('/a', path.join(r3, 'a'));
    await assert.rejects(resolveInRoot(r3, '/a/x'), /too many levels of symbolic links/);
  } finally {
    fs.rmSync(r3, { recursive: true, force: true });
  }
});
