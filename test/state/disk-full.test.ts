// A full disk while img writes its small files (an image's name, a build cache record,
// a new snapshot): a DiskFullError naming what was being written, the filesystem, the
// space left and what to do (not a bare ENOSPC), with no temp file left behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { ImageStore } from '../../lib/images/store';
import { CacheStore } from '../../lib/solver/cache';
import { NativeSnapshotter } from '../../lib/snapshot/native';
import { releaseAllLeases } from '../../lib/snapshot/lease';
import { DiskFullError } from '../../lib/util/errors';

const skip = process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root (CI runs the suite as root)';
let state = '';

before(() => {
  if (skip) return;
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', state]);
});
after(() => {
  if (!state) return;
  execFileSync('umount', [state]);
  fs.rmSync(state, { recursive: true, force: true });
});

// Makes the directories while there is room, then fills the disk to the last byte.
async function fill(): Promise<void> {
  for (const d of ['images', 'cache/records', 'cache/roots', 'snapshots/native', 'locks/snapshots/native']) await fsp.mkdir(path.join(state, d), { recursive: true });
  const fh = await fsp.open(path.join(state, 'filler'), 'w');
  try {
    for (let n = 1 << 16; n >= 1; ) {
      try {
        await fh.write(Buffer.alloc(n));
      } catch {
        n >>= 1;
      }
    }
  } finally {
    await fh.close();
  }
}

function isFull(what: RegExp) {
  return (err: Error & { hint?: string }) => {
    assert.ok(err instanceof DiskFullError, `${err.constructor.name}: ${err.message}`);
    assert.match(err.message, what);
    assert.match(err.message, /: \d+(\.\d+)?(B|KiB) free of 256KiB$/);
    assert.match(err.hint ?? '', /img prune/);
    return true;
  };
}

test('a full disk: image name, cache record, new snapshot', { skip }, async () => {
  await fill();
  const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'1'.repeat(64)}` as const, size: 10 };
  await assert.rejects(new ImageStore(state).put('docker.io/library/busybox:latest', target), isFull(new RegExp(`^no space left for the image record of docker.io/library/busybox:latest on the filesystem of ${state}/images`)));
  assert.deepEqual(fs.readdirSync(path.join(state, 'images')), [], 'no temp file left');

  const cache = new CacheStore(state);
  const blob = { digest: `sha256:${'2'.repeat(64)}` as const, diffId: `sha256:${'3'.repeat(64)}` as const, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 1 };
  await assert.rejects(
    cache.put('sha256:' + '4'.repeat(64), { name: '[2/3] RUN make', kind: 'exec' }, { snapshot: null, layers: [{ blob }] }),
    isFull(/^no space left for the build cache record of \[2\/3\] RUN make on the filesystem of /),
  );
  assert.deepEqual(fs.readdirSync(path.join(state, 'cache/roots')), []);
  assert.deepEqual(fs.readdirSync(path.join(state, 'cache/records')), []);

  const sn = new NativeSnapshotter(state);
  await assert.rejects(sn.prepare(null, '[2/3] RUN make'), isFull(new RegExp(`^no space left for a new snapshot \\(\\[2/3\\] RUN make\\) on the filesystem of ${state}/snapshots/native`)));
  await releaseAllLeases();

  // Room again: everything works.
  await fsp.rm(path.join(state, 'filler'));
  await new ImageStore(state).put('docker.io/library/busybox:latest', target);
  const id = await sn.prepare(null, 'after');
  assert.equal((await sn.readMeta(id))?.kind, 'active');
  await releaseAllLeases();
});
