// Snapshot trees spread over the filesystem's block groups: the snapshotter's root carries
// ext4's "top of directory hierarchies" flag (chattr +T), read back with e2fsprogs' lsattr.
// host/index.ts spreadNewDirectories says why (inode allocation on a journal-less ext4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spreadNewDirectories } from '../../lib/host';
import { newSnapshotter } from '../../lib/snapshot/open';

// The flags lsattr shows for a directory, or null where it cannot read them (no lsattr, or a
// filesystem without inode flags, e.g. tmpfs).
function flagsOf(dir: string): string | null {
  try {
    return execFileSync('lsattr', ['-d', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/)[0];
  } catch {
    return null;
  }
}

const base = fs.mkdtempSync('/var/tmp/img-topdir-');
process.on('exit', () => fs.rmSync(base, { recursive: true, force: true }));
const probe = path.join(base, 'probe');
fs.mkdirSync(probe);
const noFlags = flagsOf(probe) === null && `lsattr cannot read inode flags under ${base} (no e2fsprogs, or not ext4)`;

test('spreadNewDirectories marks the directory T, once, keeping its other flags', { skip: noFlags }, () => {
  const dir = path.join(base, 'spread');
  fs.mkdirSync(dir);
  execFileSync('chattr', ['+d', dir]); // "no dump": another flag the owner may set
  assert.ok(!flagsOf(dir)!.includes('T'));
  spreadNewDirectories(dir);
  spreadNewDirectories(dir); // already set: nothing changes, no error
  const flags = flagsOf(dir)!;
  assert.ok(flags.includes('T'), `flags ${flags}`);
  assert.ok(flags.includes('d'), `flags ${flags}: the d flag was lost`);
});

test('spreadNewDirectories is a no-op where the filesystem has no such flag', { skip: !fs.existsSync('/dev/shm') && 'no /dev/shm (tmpfs) here' }, () => {
  const dir = fs.mkdtempSync('/dev/shm/img-topdir-');
  try {
    assert.doesNotThrow(() => spreadNewDirectories(dir));
    assert.ok(fs.statSync(dir).isDirectory());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a snapshotter root made by prepare carries the flag; each snapshot dir lands in it', { skip: noFlags }, async () => {
  const state = path.join(base, 'state');
  const sn = newSnapshotter(state, 'native');
  const id = await sn.prepare(null, 'topdir test');
  assert.ok(flagsOf(path.join(state, 'snapshots', 'native'))!.includes('T'));
  assert.ok(fs.statSync(sn.dirOf(id)).isDirectory());
  // the flag is the root's only: a snapshot's own tree keeps the usual placement
  assert.ok(!flagsOf(sn.dirOf(id))!.includes('T'));
  await sn.remove(id);
});
