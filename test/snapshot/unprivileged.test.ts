// What an unprivileged user cannot have (issue 13, item 12): device nodes cannot be
// made without privileges, and setuid/setgid files copied into a directory the
// caller owns would run as the caller for whoever starts them. `img unpack` and
// `-o type=local` leave the devices out and drop those bits — each with a warning
// that counts them — while setgid directories (group inheritance) stay as they are.
// The crafted layer is written by tar-stream, not img's tar codec.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { busyboxLayerTar, imageFromLayers } from '../fixtures/images';
import { tarOf } from '../fixtures/layers';
import { build, setup } from '../builder/helpers';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless } from '../helpers/rootless';

describe('unprivileged unpack and local export: devices and setuid/setgid', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });

  test('left out and dropped, with counted warnings', { timeout: 180_000 }, async () => {
    const e = await setup({ Dockerfile: 'FROM special\nRUN echo built > /built\n' });
    dirs.push(e.root);
    const special = await tarOf([
      { name: 'dev', type: 'directory' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 },
      { name: 'usr', type: 'directory' },
      { name: 'usr/bin', type: 'directory' },
      { name: 'usr/bin/suid', body: '#!/bin/sh\n', mode: 0o4755 },
      { name: 'usr/bin/sgid', body: '#!/bin/sh\n', mode: 0o2711, gid: 42 },
      { name: 'usr/bin/plain', body: '#!/bin/sh\n', mode: 0o755 },
      { name: 'shared', type: 'directory', mode: 0o2775 },
    ]);
    await imageFromLayers([await busyboxLayerTar(), special]).writeToStore(e.state, 'special');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, e.state]);

    const check = (root: string) => {
      const mode = (p: string) => fs.lstatSync(path.join(root, p)).mode & 0o7777;
      assert.equal(mode('usr/bin/suid'), 0o755);
      assert.equal(mode('usr/bin/sgid'), 0o711);
      assert.equal(mode('usr/bin/plain'), 0o755);
      assert.equal(mode('shared'), 0o2775, 'a setgid directory keeps its bit');
      assert.deepEqual(fs.readdirSync(path.join(root, 'dev')), [], 'no device nodes');
      assert.equal(fs.lstatSync(path.join(root, 'usr/bin/suid')).uid, u.uid);
    };

    const out = path.join(e.root, 'unpacked');
    const r = await runImgRootless(['-s', e.state, '-b', 'native', 'unpack', '-o', out, 'special'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARN layer sha256:[0-9a-f]{64}: left out 2 device node\(s\): an unprivileged user cannot create them/);
    assert.match(r.stderr, /WARN removed the setuid\/setgid bits of 2 file\(s\)/);
    check(out);

    const local = path.join(e.root, 'local');
    const b = await build(e, ['-b', 'native', '-o', `type=local,dest=${local}`, e.ctx]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /removed the setuid\/setgid bits of 2 file\(s\)/);
    check(local);
    assert.equal(fs.readFileSync(path.join(local, 'built'), 'utf8'), 'built\n');
  });
});
