// Real readers and writers: GNU tar and umoci read our layers; we read GNU tar's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyLayer } from '../../lib/archive/apply';
import { compareDirs, writeLayer } from '../../lib/archive/diff';
import { createLayerBlob } from '../../lib/archive/layer';
import { lsetxattr } from '../../lib/archive/sys';
import { tmp, rmrf, describeTree } from './helpers';
import { writeOciLayout } from './oci';

// Applying layers with their owners, device nodes and setuid bits needs root (CI runs the
// suite as root); the unprivileged path is covered by test/archive/rootless.test.ts.
const AS_ROOT = {
  skip: process.getuid?.() !== 0 ? 'needs root to apply owners, devices and setuid bits (unprivileged path: test/archive/rootless.test.ts)' : false,
};

function w(p: string, body: string): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, body);
}

/** Files, dirs, modes, symlinks, hard links, long and unicode names, an xattr; no devices. */
function sampleTree(root: string): void {
  w(path.join(root, 'etc/os-release'), 'ID=img\n');
  w(path.join(root, 'usr/bin/tool'), '#!/bin/sh\n');
  fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o4755);
  fs.linkSync(path.join(root, 'usr/bin/tool'), path.join(root, 'usr/bin/tool2'));
  fs.symlinkSync('usr/bin', path.join(root, 'bin'));
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  w(path.join(root, Array.from({ length: 8 }, (_, i) => `a-rather-long-directory-name-${i}`).join('/'), 'z'.repeat(140)), 'long');
  w(path.join(root, 'ünï/名前'), 'utf8');
  w(path.join(root, 'data.bin'), 'q'.repeat(1024 * 1024 + 1));
  w(path.join(root, 'x'), 'x');
  lsetxattr(path.join(root, 'x'), 'user.note', Buffer.from('kept'));
  execFileSync('find', [root, '-depth', '-exec', 'touch', '-h', '-d', '@1600000000', '{}', '+']);
}

async function makeLayer(src: string, out: string, c: 'gzip' | 'zstd' | 'none' = 'gzip') {
  return createLayerBlob(writeLayer(compareDirs(null, src), src), c, fs.createWriteStream(out));
}

test('GNU tar extracts our layer to the same tree', AS_ROOT, async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    sampleTree(src);
    const blob = path.join(base, 'layer.tgz');
    await makeLayer(src, blob);
    const out = path.join(base, 'out');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xzf', blob, '-C', out, '--numeric-owner', '--same-owner', '--xattrs', '--xattrs-include=user.*']);
    assert.deepEqual(describeTree(out, { times: true, xattrs: true, ino: true }), describeTree(src, { times: true, xattrs: true, ino: true }));
    // and it lists cleanly in verbose mode (no warnings on stderr)
    const r = spawnSync('tar', ['-tvzf', blob], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '');
  } finally {
    rmrf(base);
  }
});

test('we apply GNU tar layers (pax with xattrs, gnu long names) to the same tree', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    sampleTree(src);
    for (const format of ['pax', 'gnu']) {
      const blob = path.join(base, `gnu-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, ...(format === 'pax' ? ['--xattrs'] : []), '--sort=name', '-C', src, '-cf', blob, '.']);
      const out = path.join(base, `out-${format}`);
      await applyLayer(fs.createReadStream(blob), { root: out, sameOwner: true });
      assert.deepEqual(
        describeTree(out, { times: true, xattrs: format === 'pax', ino: true }),
        describeTree(src, { times: true, xattrs: format === 'pax', ino: true }),
        format,
      );
    }
  } finally {
    rmrf(base);
  }
});

test('umoci unpack --rootless reads an OCI image made of our layers', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    sampleTree(src);
    // two layers: the tree, then a change set with a whiteout, on top
    const l1 = path.join(base, 'l1');
    const r1 = await makeLayer(src, l1, 'gzip');
    const upper = path.join(base, 'upper');
    execFileSync('cp', ['-a', src, upper]);
    fs.rmSync(path.join(upper, 'etc/os-release'));
    w(path.join(upper, 'etc/new'), 'new');
    const l2 = path.join(base, 'l2');
    const r2 = await createLayerBlob(writeLayer(compareDirs(src, upper), upper), 'gzip', fs.createWriteStream(l2));
    const layout = path.join(base, 'layout');
    writeOciLayout(layout, [
      { file: l1, ...r1 },
      { file: l2, ...r2 },
    ]);
    const bundle = path.join(base, 'bundle');
    const r = spawnSync('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // rootless: umoci does not chown (and keeps xattrs it may set); compare type, mode, content, links
    const strip = (t: Record<string, string>) =>
      Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.replace(/ \d+:\d+/, '')]));
    assert.deepEqual(strip(describeTree(path.join(bundle, 'rootfs'))), strip(describeTree(upper)));
  } finally {
    rmrf(base);
  }
});
