// A RUN that fills the disk is not the command's fault: the build says the
// snapshot's filesystem is full, how much is left and what to do (issue 13.7).
// The state dir is a 32 MiB tmpfs (mounting it needs root, as CI runs the suite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, rootlessUser } from '../helpers/rootless';
import { build, setup, skip } from './helpers';

const skipReason = skip || (process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root (CI runs the suite as root)');

test('img build (rootless): a RUN that fills the disk fails as a full disk naming the snapshot\'s filesystem and the space left', { skip: skipReason, timeout: 240_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=64\n' });
  // The busybox image setup stored, moved onto the small disk.
  const small = path.join(e.root, 'small');
  fs.mkdirSync(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=755', 'tmpfs', small]);
  t.after(async () => {
    execFileSync('umount', ['-l', small]);
    await cleanup(e.root);
  });
  execFileSync('cp', ['-a', `${e.state}/.`, small]);
  const u = rootlessUser()!;
  execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, small]);

  const run = await build({ ...e, state: small }, [e.ctx]);
  assert.equal(run.code, 1, run.stderr);
  const last = run.stderr.trimEnd().split('\n').pop()!;
  assert.match(
    last,
    new RegExp(
      `^ERROR: failed to solve: process "/bin/sh -c dd if=/dev/zero of=/big bs=1M count=64" did not complete successfully: exit code: 1: ` +
        `no space left for the snapshot of this step on the filesystem of ${small}/\\S+: \\d+(\\.\\d+)?(B|KiB) free of 32MiB ` +
        `— free space on that disk, run img prune \\(removes what no image needs\\), or use a --state dir on a larger disk$`,
    ),
  );
  // dd's own words are above it, in the step's output.
  assert.match(run.stderr, /No space left on device/);
  // The failed step's snapshot is gone: the space is back.
  const st = fs.statfsSync(small);
  assert.ok(st.bavail * st.bsize > 24 << 20, `${st.bavail * st.bsize} bytes free after the failure`);
});
