// img's own image (the repository's Dockerfile), built by img as the
// unprivileged user from a Debian base made of Debian packages (make-rootfs.sh,
// pushed to the test registry as debian:bookworm-slim), then run as a pod
// with Docker's defaults: img doctor and a multi-stage build inside it.
// The Dockerfile's apt-get update needs Debian's mirror (as .ci/setup-host does).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import type { ImageConfig, Manifest } from '../../lib/images/types';
import { REPO } from '../helpers/cli';
import { cleanup, runImgRootless, tempDir } from '../helpers/rootless';
import { buildSea, SEA_BINARY } from '../helpers/sea';
import { imageFromLayer, makeBusyboxImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { BASE_ROOTFS, ensureRootfs, podSkipReason, POD_UID, runPod } from './pod';
import { assertTree, doctorAndBuild, row } from './scenario';

// security.capability's permitted bits (vfs_cap_data), as getcap reads them.
function fileCaps(file: string): string[] {
  const out = execFileSync('getcap', [file], { encoding: 'utf8' }).trim();
  return out ? out.slice(file.length).trim().split(/[ ,]+/) : [];
}

describe('img\'s own image', { skip: podSkipReason() }, () => {
  let registry: Registry;
  let state: string;
  let rootfs: string;
  const volumes: string[] = [];
  before(async () => {
    ensureRootfs();
    buildSea();
    registry = await startRegistry();
    const base = execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', BASE_ROOTFS, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
    await registry.seed('debian', 'bookworm-slim', imageFromLayer({ tar: base }, { cmd: ['bash'], history: 'debootstrap --variant=minbase bookworm' }));
    await registry.seed('library/busybox', 'latest', await makeBusyboxImage());
    state = tempDir('img-own-image-');
    rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'img-own-rootfs-'));
  });
  after(async () => {
    await registry?.stop();
    if (state) await cleanup(state);
    if (rootfs) fs.rmSync(rootfs, { recursive: true, force: true });
    for (const v of volumes) fs.rmSync(v, { recursive: true, force: true });
  });

  it('builds with img as the unprivileged user: config, single binary, id helpers with file capabilities', async () => {
    const name = `${registry.host}/img:test`;
    const args = ['--state', state, 'build', '--progress=plain', '--build-arg', `BASE=${registry.host}/debian:bookworm-slim`];
    const built = await runImgRootless([...args, '-t', name, REPO], { timeoutMs: 600_000 });
    assert.equal(built.code, 0, built.stderr);

    const rec = await new ImageStore(state).get(name);
    assert.ok(rec, `${name} is in the store`);
    const content = new ContentStore(state);
    const manifest = await content.readJson<Manifest>(rec.target.digest);
    const config = (await content.readJson<ImageConfig>(manifest.config.digest)).config!;
    assert.deepEqual(config.Entrypoint, ['img']);
    assert.equal(config.User, 'user');
    assert.equal(config.WorkingDir, '/home/user');
    assert.deepEqual(Object.keys(config.Volumes ?? {}), ['/home/user/.local/share/img']);
    assert.ok(config.Env?.includes('HOME=/home/user'), JSON.stringify(config.Env));

    // The same build again, all cached, as a root filesystem for the pod below.
    const tar = path.join(state, 'rootfs.tar');
    const again = await runImgRootless([...args, '-o', `type=tar,dest=${tar}`, REPO], { timeoutMs: 300_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /^#(\d+) \[2\/5\] RUN apt-get update.*\n#\1 CACHED$/m, 'the steps are cached');
    execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xpf', tar, '-C', rootfs]);
    fs.rmSync(tar);

    assert.equal(fs.statSync(path.join(rootfs, 'usr/local/bin/img')).size, fs.statSync(SEA_BINARY).size);
    for (const [helper, cap] of [
      ['newuidmap', 'cap_setuid=ep'],
      ['newgidmap', 'cap_setgid=ep'],
    ]) {
      const p = path.join(rootfs, 'usr/bin', helper);
      assert.equal(fs.statSync(p).mode & 0o4000, 0, `${helper} is not setuid`);
      assert.deepEqual(fileCaps(p), [cap]);
    }
    assert.equal(fs.readFileSync(path.join(rootfs, 'etc/subuid'), 'utf8'), 'user:100000:65536\n');
    assert.equal(fs.readFileSync(path.join(rootfs, 'etc/subgid'), 'utf8'), 'user:100000:65536\n');
    assert.match(fs.readFileSync(path.join(rootfs, 'etc/passwd'), 'utf8'), new RegExp(`^user:x:${POD_UID}:${POD_UID}:`, 'm'));
    for (const tool of ['usr/sbin/runc', 'usr/bin/fuse-overlayfs', 'usr/bin/git', 'etc/ssl/certs/ca-certificates.crt']) assert.ok(fs.existsSync(path.join(rootfs, tool)), tool);
    assert.equal(fs.statSync(path.join(rootfs, 'home/user/.local/share/img')).uid, POD_UID);
  });

  it('runs as a pod with Docker\'s defaults: each output line once, doctor, a multi-stage build', async () => {
    assert.ok(fs.existsSync(path.join(rootfs, 'usr/local/bin/img')), 'the image was built by the test above');
    const version = await runPod({ variant: 'default', rootfs, argv: ['img', 'version'] });
    assert.equal(version.code, 0, version.stderr);
    const lines = version.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'img:');
    assert.equal(new Set(lines).size, lines.length, `every line once:\n${version.stdout}`);

    const r = await doctorAndBuild({ variant: 'default', owner: 1000, registry: registry.host, img: { argv: ['img'], env: {}, volumes: [] }, rootfs, cleanup: volumes });
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'host' });
    assert.match(row(r.doctor, 'helpers').found, /newuidmap \(file capability cap_setuid\)/);
    // The single binary carries img-launch: builds enter the namespace before Node starts.
    assert.match(row(r.doctor, 'entry').found, /img-launch\S* maps the namespace before Node starts/);
    assert.equal(r.buildCode, 0, r.buildLog);
    assert.equal(r.buildOut.match(/^Successfully built/gm)?.length, 1, `one build, not two:\n${r.buildOut}`);
    await assertTree(r.tar, 1000, false);
  });
});
