import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tarOf, gzip } from '../fixtures/layers';
import { tmp, rmrf } from './helpers';

const USER = 'imgtest';

// As an unprivileged user (imgtest when the tests run as root): no chown, devices skipped
// with a debug line, read-only directories still filled, setuid bits kept on own files.
test('unprivileged apply into a caller-owned dir', async () => {
  const base = tmp();
  try {
    const layer = path.join(base, 'layer.tgz');
    fs.writeFileSync(
      layer,
      gzip(
        await tarOf([
          { name: 'ro', type: 'directory', mode: 0o555 },
          { name: 'ro/file', body: 'inside a read-only dir', uid: 0, gid: 0 },
          { name: 'ro/sub', type: 'directory', mode: 0o500 },
          { name: 'ro/sub/deeper', body: 'x' },
          { name: 'dev', type: 'directory' },
          { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
          { name: 'suid', body: '#!', mode: 0o4755, uid: 0 },
          { name: 'link', type: 'symlink', linkname: 'suid' },
        ]),
      ),
    );
    const root = path.join(base, 'root');
    let argv = [process.execPath, '--import', 'tsx', path.join(__dirname, 'rootless-child.ts'), layer, root];
    if (process.getuid!() === 0) {
      const uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
      assert.ok(uid > 0, `the test user ${USER} exists (created by .ci/setup-host)`);
      fs.chownSync(base, uid, uid);
      fs.chownSync(layer, uid, uid);
      argv = ['runuser', '-u', USER, '--', ...argv];
    }
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', cwd: path.resolve(__dirname, '../..') });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim());
    assert.match(out.diffId, /^sha256:[0-9a-f]{64}$/);
    assert.ok(out.debug.some((m: string) => /dev\/null: char device 1:3 skipped \(EPERM/.test(m)), out.debug.join('\n'));
    assert.equal(fs.readFileSync(path.join(root, 'ro/file'), 'utf8'), 'inside a read-only dir');
    assert.equal(fs.readFileSync(path.join(root, 'ro/sub/deeper'), 'utf8'), 'x');
    assert.equal(fs.statSync(path.join(root, 'ro')).mode & 0o777, 0o555);
    assert.equal(fs.statSync(path.join(root, 'ro/sub')).mode & 0o777, 0o500);
    assert.equal(fs.statSync(path.join(root, 'suid')).mode & 0o7777, 0o4755);
    assert.equal(fs.statSync(path.join(root, 'suid')).uid, process.getuid!() === 0 ? fs.statSync(base).uid : process.getuid!());
    assert.ok(!fs.existsSync(path.join(root, 'dev/null')));
  } finally {
    rmrf(base);
  }
});
