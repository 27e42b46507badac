// probe(): fields a user sees in diagnostics, checked against the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { loadAddon } from '../../lib/host';

test('addon probe reports kernel, ids, userns, overlayfs and fuse', () => {
  const p = loadAddon().probe();
  assert.equal(p.kernel, os.release());
  assert.equal(p.uid, process.getuid!());
  assert.equal(p.gid, process.getgid!());
  assert.equal(typeof p.userns, 'boolean');
  if (!p.userns) assert.match(p.usernsError!, /^E[A-Z]+$/);
  assert.equal(p.overlayfs, /\toverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8')));
  assert.equal(typeof p.fuse, 'boolean');
});
