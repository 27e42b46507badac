// A build's -o type=docker|oci|tar as BuildKit's exporters write them, read back
// with skopeo and tar (run as the unprivileged user).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { build, setup, skip } from '../builder/helpers';
import { cleanup, rootlessUser, runImgRootless } from '../helpers/rootless';

const tarJson = (file: string, entry: string) => JSON.parse(execFileSync('tar', ['-xOf', file, entry], { encoding: 'utf8' }));

test('-o type=docker: Docker media types, no repositories, dated names; multi-platform refused; type=tar platform dirs dated 0', { skip, timeout: 180_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nCOPY f /f\n', f: 'x\n' });
  t.after(() => cleanup(e.root));
  const d = path.join(e.root, 'd.tar');
  const r = await build(e, ['-t', 'one:1', '-t', 'two', '-o', `type=docker,dest=${d}`, e.ctx], {});
  assert.equal(r.code, 0, r.stderr);
  const names = execFileSync('tar', ['-tf', d], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(names.slice(0, 2), ['blobs/', 'blobs/sha256/']);
  assert.deepEqual(names.slice(-3), ['index.json', 'manifest.json', 'oci-layout']);
  // BuildKit's docker exporter defaults to oci-mediatypes=false.
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `docker-archive:${d}:one:1`], { encoding: 'utf8' }));
  assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(raw.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
  assert.deepEqual(tarJson(d, 'manifest.json')[0].RepoTags, ['one:1', 'two:latest']);
  const index = tarJson(d, 'index.json');
  assert.deepEqual(index.manifests.map((m: { annotations: Record<string, string> }) => Object.keys(m.annotations)), [
    ['io.containerd.image.name', 'org.opencontainers.image.created', 'org.opencontainers.image.ref.name'],
    ['io.containerd.image.name', 'org.opencontainers.image.created', 'org.opencontainers.image.ref.name'],
  ]);
  assert.match(index.manifests[0].annotations['org.opencontainers.image.created'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  // oci-mediatypes=true keeps OCI ones; SOURCE_DATE_EPOCH dates the index.json entry.
  const o = path.join(e.root, 'o.tar');
  const r2 = await runImgRootless(['-s', e.state, 'build', '-o', `type=docker,oci-mediatypes=true,dest=${o}`, e.ctx], { env: { SOURCE_DATE_EPOCH: '1000000000' } });
  assert.equal(r2.code, 0, r2.stderr);
  const i2 = tarJson(o, 'index.json');
  assert.equal(i2.manifests[0].mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.deepEqual(i2.manifests[0].annotations, { 'org.opencontainers.image.created': '2001-09-09T01:46:40Z' });
  assert.deepEqual(tarJson(o, 'manifest.json')[0].RepoTags, null);

  const s = await setup({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x\n' });
  t.after(() => cleanup(s.root));
  const multi = await build(s, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=docker,dest=${path.join(s.root, 'm.tar')}`, s.ctx]);
  assert.equal(multi.code, 0, multi.stderr);
  // the whole index, every platform (docker 25+ and containerd load it); manifest.json one image
  const mi = tarJson(path.join(s.root, 'm.tar'), 'index.json');
  const top = mi.manifests[0];
  assert.equal(top.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  const list = JSON.parse(execFileSync('tar', ['-xOf', path.join(s.root, 'm.tar'), `blobs/sha256/${top.digest.slice(7)}`], { encoding: 'utf8' }));
  assert.deepEqual(list.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  assert.equal(tarJson(path.join(s.root, 'm.tar'), 'manifest.json').length, 1);
  const tf = path.join(s.root, 'm-rootfs.tar');
  const mt = await build(s, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=tar,dest=${tf}`, s.ctx]);
  assert.equal(mt.code, 0, mt.stderr);
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', tf], { encoding: 'utf8' }).trim().split('\n');
  for (const dir of ['linux_amd64/', 'linux_arm64/']) {
    const line = listing.find((l) => l.endsWith(` ${dir}`));
    assert.match(line ?? '', /^drwxr-xr-x 0\/0 +0 1970-01-01 00:00:00 /, dir);
  }
  assert.equal(execFileSync('tar', ['-xOf', tf, 'linux_arm64/f'], { encoding: 'utf8' }), 'x\n');
  // platform-split=false: BuildKit's refusal for several platforms.
  for (const o of [`type=tar,dest=${path.join(s.root, 'ns.tar')},platform-split=false`, `type=local,dest=${path.join(s.root, 'ns')},platform-split=false`]) {
    const ns = await build(s, ['--platform', 'linux/amd64,linux/arm64', '-o', o, s.ctx]);
    assert.equal(ns.code, 1, o);
    assert.match(ns.stderr, /unable to export multiple platforms without map/);
  }
  // type=local: the same directories, 0755 and dated 0, owned by the user.
  const local = path.join(s.root, 'local');
  const ml = await build(s, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${local}`, s.ctx]);
  assert.equal(ml.code, 0, ml.stderr);
  for (const dir of ['linux_amd64', 'linux_arm64']) {
    const st = fs.statSync(path.join(local, dir));
    assert.equal(st.mode & 0o7777, 0o755, dir);
    assert.equal(st.mtimeMs, 0, dir);
    assert.equal(st.uid, rootlessUser()!.uid, dir);
    assert.equal(fs.readFileSync(path.join(local, dir, 'f'), 'utf8'), 'x\n');
  }
});

test('-o type=oci,tar=false: an OCI layout directory, index.json merged by name as BuildKit client/ociindex', { skip, timeout: 180_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x\n' });
  t.after(() => cleanup(e.root));
  const dir = path.join(e.root, 'layout');
  for (const args of [['-o', `type=oci,tar=false,dest=${dir},name=a:1`], ['-o', `type=oci,tar=false,dest=${dir}`], ['-o', `type=oci,tar=false,dest=${dir},name=a:1`]]) {
    const r = await build(e, [...args, e.ctx]);
    assert.equal(r.code, 0, r.stderr);
  }
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  // The second a:1 replaced the first; the unnamed build is ref.name "latest".
  assert.deepEqual(index.manifests.map((m: { annotations: Record<string, string> }) => [m.annotations['io.containerd.image.name'], m.annotations['org.opencontainers.image.ref.name']]), [
    [undefined, 'latest'],
    ['docker.io/library/a:1', '1'],
  ]);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.equal(fs.existsSync(path.join(dir, 'manifest.json')), false);
  const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}:1`], { encoding: 'utf8' }));
  assert.equal(info.Digest, index.manifests[1].digest);
  assert.match(execFileSync('umoci', ['ls', '--layout', dir], { encoding: 'utf8' }), /^1$/m);
  const owner = rootlessUser()!;
  for (const f of ['index.json', 'oci-layout', `blobs/sha256/${index.manifests[1].digest.slice(7)}`]) assert.equal(fs.statSync(path.join(dir, f)).uid, owner.uid, f);
});

test('descriptor annotations go on the index.json entry of an archive, a user created winning (BuildKit)', { skip, timeout: 180_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x\n' });
  t.after(() => cleanup(e.root));
  const o = path.join(e.root, 'o.tar');
  const r = await build(e, ['--annotation', 'manifest-descriptor:com.example.d=1', '--annotation', 'manifest-descriptor:org.opencontainers.image.created=2000-01-01T00:00:00Z', '-o', `type=oci,dest=${o},name=a:1`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(tarJson(o, 'index.json').manifests[0].annotations, {
    'com.example.d': '1',
    'io.containerd.image.name': 'docker.io/library/a:1',
    'org.opencontainers.image.created': '2000-01-01T00:00:00Z',
    'org.opencontainers.image.ref.name': '1',
  });
  // Several platforms: index-descriptor annotations on the index's entry.
  const m = path.join(e.root, 'm.tar');
  const r2 = await build(e, ['--platform', 'linux/amd64,linux/arm64', '--annotation', 'index-descriptor:com.example.i=2', '-o', `type=oci,dest=${m}`, e.ctx]);
  assert.equal(r2.code, 0, r2.stderr);
  const entry = tarJson(m, 'index.json').manifests[0];
  assert.equal(entry.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(entry.annotations['com.example.i'], '2');
  assert.ok(entry.annotations['org.opencontainers.image.created']);
});
