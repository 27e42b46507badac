// makeDirs: mkdir -p for paths users give, failing clearly where node's own spins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDirs } from '../../lib/util/fsutil';
import { UsageError } from '../../lib/util/errors';

test('makeDirs creates parents, accepts existing directories and links to them, names what is in the way', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'img-makedirs-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  await makeDirs(path.join(root, 'a/b/c'), 'test directory', 0o750);
  assert.equal(fs.statSync(path.join(root, 'a/b/c')).mode & 0o777, 0o750 & ~process.umask());
  await makeDirs(path.join(root, 'a/b/c'), 'test directory'); // exists: fine
  fs.symlinkSync(path.join(root, 'a'), path.join(root, 'link'));
  await makeDirs(path.join(root, 'link/b/d'), 'test directory');
  assert.ok(fs.statSync(path.join(root, 'a/b/d')).isDirectory(), 'created through the link');
  // Concurrent creators of one tree all succeed.
  await Promise.all(Array.from({ length: 8 }, () => makeDirs(path.join(root, 'x/y/z'), 'test directory')));

  fs.writeFileSync(path.join(root, 'file'), '');
  await assert.rejects(makeDirs(path.join(root, 'file'), 'test directory'), (err: Error) => err instanceof UsageError && /test directory .*\/file exists and is not a directory/.test(err.message));
  await assert.rejects(makeDirs(path.join(root, 'file/sub/dir'), 'test directory'), (err: Error) => err instanceof UsageError && /a part of the path is a file, not a directory/.test(err.message));
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
  await assert.rejects(makeDirs(path.join(root, 'dangling'), 'test directory'), /points nowhere/);
  // Where node's recursive mkdir loops forever: an answer at once.
  const t0 = Date.now();
  await assert.rejects(makeDirs('/proc/img-test/sub', 'test directory'), (err: Error & { hint?: string }) => {
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, 'cannot create test directory /proc/img-test: /proc does not hold new directories');
    assert.match(err.hint ?? '', /choose a path on a disk/);
    return true;
  });
  assert.ok(Date.now() - t0 < 5000);
});
