// `img unpack` as the unprivileged user, on every snapshot backend: the
// rootfs lands in a directory the caller owns, layers are reused, a missing
// image is pulled from the (real) registry, and the result runs under runc.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { TSX, cleanup, rootlessUser, runAsUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

const FILES = { '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n', '/etc/motd': 'hello from img\n' };
const dirs: string[] = [];
const mk = (p: string) => {
  const d = tempDir(p);
  dirs.push(d);
  return d;
};

function chownTree(dir: string): void {
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
}

describe('img unpack (rootless)', { skip: skipUnlessRootless() }, () => {
  let img: BuiltImage;
  let reg: Registry;
  before(async () => {
    img = await makeBusyboxImage({ extraFiles: FILES });
    reg = await startRegistry();
    await reg.seed('library/unpackme', 'latest', img);
  });
  after(async () => {
    await reg?.stop();
    for (const d of dirs) await cleanup(d);
  });

  for (const backend of ['overlayfs', 'fuse-overlayfs', 'native']) {
    test(`${backend}: rootfs owned by the caller, modes and links kept, non-empty output refused`, async () => {
      const u = rootlessUser()!;
      const state = mk(`img-unpack-${backend}-`);
      await img.writeToStore(state, 'busybox');
      chownTree(state);
      const work = mk('img-unpack-cwd-');
      // Default output: ./rootfs in the working directory.
      const res = await runImgRootless(['-s', state, '-b', backend, 'unpack', 'busybox'], { cwd: work, timeoutMs: 120_000 });
      assert.equal(res.code, 0, res.stderr);
      const out = path.join(work, 'rootfs');
      assert.equal(res.stdout, `Successfully unpacked rootfs for busybox to: ${out}\n`);
      const bb = fs.lstatSync(path.join(out, 'bin', 'busybox'));
      assert.equal(bb.mode & 0o7777, 0o755);
      assert.equal(bb.uid, u.uid);
      assert.equal(bb.gid, u.gid);
      assert.equal(fs.readlinkSync(path.join(out, 'bin', 'sh')), 'busybox');
      assert.equal(fs.lstatSync(path.join(out, 'bin', 'sh')).uid, u.uid);
      assert.ok(fs.readdirSync(path.join(out, 'bin')).length > 100);
      assert.equal(fs.readFileSync(path.join(out, 'etc', 'motd'), 'utf8'), 'hello from img\n');
      assert.equal(fs.statSync(path.join(out, 'etc', 'motd')).mtime.toISOString(), '2024-01-01T00:00:00.000Z');
      // The chainID snapshot is there, reused by a second unpack elsewhere.
      assert.ok(fs.existsSync(path.join(state, 'snapshots', backend, img.diffIds[0], 'meta.json')));
      // The second copy goes file by file (the fallback when the addon cannot copy a tree).
      const again = await runImgRootless(['-s', state, '-b', backend, 'unpack', '-o', path.join(work, 'second'), 'busybox'], {
        timeoutMs: 120_000,
        env: { IMG_COPYOUT: 'portable' },
      });
      assert.equal(again.code, 0, again.stderr);
      const second = path.join(work, 'second');
      assert.deepEqual(fs.readdirSync(path.join(second, 'bin')).sort(), fs.readdirSync(path.join(out, 'bin')).sort());
      const bb2 = fs.lstatSync(path.join(second, 'bin', 'busybox'));
      assert.deepEqual([bb2.mode, bb2.uid, bb2.mtimeMs], [bb.mode, bb.uid, bb.mtimeMs]);
      const snaps = fs.readdirSync(path.join(state, 'snapshots', backend)).filter((n) => n.startsWith('sha256:'));
      assert.deepEqual(snaps, [img.diffIds[0]]);
      // Into the non-empty directory: refused, nothing touched.
      const bad = await runImgRootless(['-s', state, '-b', backend, 'unpack', '-o', out, 'busybox'], { timeoutMs: 60_000 });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^Error: output directory .*rootfs is not empty — /);
    });
  }

  test('an image not in the store is pulled first; the rootfs runs under runc', async () => {
    const state = mk('img-unpack-pull-');
    const out = path.join(mk('img-unpack-pull-out-'), 'rfs');
    const ref = `${reg.host}/library/unpackme`;
    const res = await runImgRootless(['-s', state, 'unpack', '-o', out, ref], { timeoutMs: 120_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /Successfully unpacked rootfs for 127\.0\.0\.1:\d+\/library\/unpackme to: /);
    assert.equal(fs.readFileSync(path.join(out, 'etc', 'motd'), 'utf8'), 'hello from img\n');
    // No -b: `auto` probed the host once and cached its verdict.
    const auto = JSON.parse(fs.readFileSync(path.join(state, 'snapshots', 'auto.json'), 'utf8'));
    assert.ok(['overlayfs', 'fuse-overlayfs', 'native'].includes(auto.backend), JSON.stringify(auto));
    assert.ok(fs.existsSync(path.join(state, 'snapshots', auto.backend, img.diffIds[0], 'meta.json')));
    const ls = await runImgRootless(['-s', state, 'ls'], { timeoutMs: 60_000 });
    assert.match(ls.stdout, /library\/unpackme:latest/);
    // Sanity: the plain directory is a working container rootfs.
    const run = await runAsUser([process.execPath, '--import', TSX, 'test/snapshot/scenarios/tools.ts', 'run-rootfs', state, out], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const [ok, count, uid] = run.stdout.trim().split('\n').map((s) => s.trim());
    assert.equal(ok, 'ok');
    assert.ok(Number(count) > 100);
    assert.equal(uid, '0');
  });

  test('concurrent unpacks of one image share one snapshot chain', async () => {
    const state = mk('img-unpack-race-');
    await img.writeToStore(state, 'busybox');
    chownTree(state);
    const work = mk('img-unpack-race-out-');
    const runs = await Promise.all(
      [1, 2, 3].map((i) => runImgRootless(['-s', state, '-b', 'overlayfs', 'unpack', '-o', path.join(work, `o${i}`), 'busybox'], { timeoutMs: 120_000 })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    for (const i of [1, 2, 3]) assert.equal(fs.readFileSync(path.join(work, `o${i}`, 'etc', 'motd'), 'utf8'), 'hello from img\n');
    const dir = path.join(state, 'snapshots', 'overlayfs');
    const snaps = fs.readdirSync(dir).filter((n) => !['l', 'mnt', 'trash', 'tmp'].includes(n));
    assert.deepEqual(snaps, [img.diffIds[0]]);
    // short links are made when a mount needs one (85f3d61): never more than one for the one snapshot
    assert.ok(fs.readdirSync(path.join(dir, 'l')).length <= 1);
  });

  test('a missing image with no registry: a clear error', async () => {
    const state = mk('img-unpack-missing-');
    const res = await runImgRootless(['-s', state, 'unpack', '-o', path.join(state, 'o'), '127.0.0.1:1/nothing/here'], { timeoutMs: 60_000 });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: /m);
  });
});
