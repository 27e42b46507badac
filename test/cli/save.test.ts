// img save read back by real tools: skopeo (docker-archive:, oci-archive:) and umoci.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { imgArgv, runImg } from '../helpers/cli';
import { makeBusyboxImage, makeIndex, sha256, type BuiltImage } from '../fixtures/images';

const run = promisify(execFile);
let state: string;
let work: string;
let busybox: BuiltImage;
let app: BuiltImage;
let multi: BuiltImage;
before(async () => {
  state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-save-'));
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-save-out-'));
  busybox = await makeBusyboxImage({ mediaTypes: 'docker' });
  app = await makeBusyboxImage({ extraFiles: { 'etc/app.conf': 'answer=42\n' } });
  const arm = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/arch': 'arm64\n' } });
  multi = await makeIndex([app, arm]);
  await busybox.writeToStore(state, 'busybox');
  await app.writeToStore(state, 'localhost:5000/team/app:1.0');
  await multi.writeToStore(state, 'multi:v1');
});
after(async () => {
  await fsp.rm(state, { recursive: true, force: true });
  await fsp.rm(work, { recursive: true, force: true });
});

async function skopeoInspect(ref: string, arch?: string): Promise<{ Architecture: string; Layers: string[]; Digest: string }> {
  const { stdout } = await run('skopeo', [...(arch ? ['--override-arch', arch] : []), 'inspect', ref]);
  return JSON.parse(stdout);
}

async function tarList(file: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tf', file]);
  return stdout.trim().split('\n');
}

describe('img save --format docker', () => {
  it('writes manifest.json/repositories/blobs that skopeo docker-archive: reads, several images in one tar', async () => {
    const out = path.join(work, 'two.tar');
    const r = await runImg(['--state', state, 'save', '-o', out, 'busybox', 'localhost:5000/team/app:1.0']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const { stdout: mj } = await run('tar', ['-xOf', out, 'manifest.json']);
    const manifest = JSON.parse(mj);
    assert.deepEqual(manifest, [
      { Config: `blobs/sha256/${busybox.configDescriptor.digest.slice(7)}`, RepoTags: ['busybox:latest'], Layers: [`blobs/sha256/${busybox.layers[0].digest.slice(7)}`] },
      { Config: `blobs/sha256/${app.configDescriptor.digest.slice(7)}`, RepoTags: ['localhost:5000/team/app:1.0'], Layers: [`blobs/sha256/${app.layers[0].digest.slice(7)}`] },
    ]);
    const { stdout: repos } = await run('tar', ['-xOf', out, 'repositories']);
    assert.deepEqual(Object.keys(JSON.parse(repos)).sort(), ['busybox', 'localhost:5000/team/app']);
    const files = await tarList(out);
    for (const d of [...busybox.blobs.keys(), ...app.blobs.keys()]) assert.ok(files.includes(`blobs/sha256/${d.slice(7)}`), d);
    const a = await skopeoInspect(`docker-archive:${out}:busybox:latest`);
    assert.equal(a.Architecture, 'amd64');
    assert.deepEqual(a.Layers, busybox.diffIds); // skopeo reports uncompressed digests for docker archives
    const b = await skopeoInspect(`docker-archive:${out}:localhost:5000/team/app:1.0`);
    assert.deepEqual(b.Layers, app.diffIds);
    // The archive is an OCI layout too (as docker >= 25 writes it).
    const c = await skopeoInspect(`oci-archive:${out}:1.0`);
    assert.equal(c.Digest, app.manifest.digest);
  });

  it('merges names of one image into one manifest.json entry and stores shared blobs once', async () => {
    assert.equal((await runImg(['--state', state, 'tag', 'busybox', 'example.com/tools/bb:stable'])).code, 0);
    const out = path.join(work, 'alias.tar');
    const r = await runImg(['--state', state, 'save', '-o', out, 'busybox', 'example.com/tools/bb:stable']);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse((await run('tar', ['-xOf', out, 'manifest.json'])).stdout);
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0].RepoTags, ['busybox:latest', 'example.com/tools/bb:stable']);
    const files = await tarList(out);
    assert.equal(files.filter((f) => f === `blobs/sha256/${busybox.layers[0].digest.slice(7)}`).length, 1);
    const info = await skopeoInspect(`docker-archive:${out}:example.com/tools/bb:stable`);
    assert.deepEqual(info.Layers, busybox.diffIds);
  });

  it('picks the host platform of a multi-platform index and copies through skopeo', async () => {
    const out = path.join(work, 'multi.tar');
    const r = await runImg(['--state', state, 'save', '--format', 'docker', '-o', out, 'multi:v1']);
    assert.equal(r.code, 0, r.stderr);
    const info = await skopeoInspect(`docker-archive:${out}`);
    assert.equal(info.Architecture, process.arch === 'arm64' ? 'arm64' : 'amd64');
    const dir = path.join(work, 'multi-oci');
    await run('skopeo', ['copy', `docker-archive:${out}`, `oci:${dir}:copied`]);
    assert.ok(fs.existsSync(path.join(dir, 'index.json')));
  });

  it('streams to stdout, byte-identical to -o', async () => {
    const file = path.join(work, 'file.tar');
    assert.equal((await runImg(['--state', state, 'save', '-o', file, 'busybox'])).code, 0);
    const argv = imgArgv(['--state', state, 'save', 'busybox']);
    const chunks: Buffer[] = [];
    const code = await new Promise<number | null>((resolve) => {
      const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      c.stdout.on('data', (d: Buffer) => chunks.push(d));
      c.on('close', resolve);
    });
    assert.equal(code, 0);
    const streamed = Buffer.concat(chunks);
    assert.equal(sha256(streamed), sha256(await fsp.readFile(file)));
  });

  it('refuses to write to a terminal, and reports unknown images and bad output paths', async () => {
    const argv = imgArgv(['--state', state, 'save', 'busybox']).map((a) => `'${a}'`).join(' ');
    // `script` gives the command a pseudo-terminal as stdout.
    const { stdout } = await run('script', ['-qec', argv, '/dev/null']).catch((e) => e as { stdout: string });
    assert.match(stdout, /Error: refusing to write an image archive to a terminal — use -o FILE, or redirect stdout/);
    const r = await runImg(['--state', state, 'save', '-o', path.join(work, 'x.tar'), 'busybox', 'missing:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: No such image: missing:1/);
    assert.equal(fs.existsSync(path.join(work, 'x.tar')), false);
    const r2 = await runImg(['--state', state, 'save', '-o', path.join(work, 'no', 'such', 'dir.tar'), 'busybox']);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /cannot write .*dir\.tar: ENOENT/);
    const r3 = await runImg(['--state', state, 'save', '--format', 'tgz', '-o', path.join(work, 'y.tar'), 'busybox']);
    assert.match(r3.stderr, /unknown save format "tgz" — use --format docker or --format oci/);
    assert.deepEqual((await fsp.readdir(work)).filter((f) => f.endsWith('.tmp')), []);
  });
});

describe('img save --format oci', () => {
  it('writes an OCI layout with ref names that skopeo and umoci read', async () => {
    const out = path.join(work, 'oci.tar');
    const r = await runImg(['--state', state, 'save', '--format', 'oci', '-o', out, 'busybox', 'multi:v1']);
    assert.equal(r.code, 0, r.stderr);
    const { stdout: idx } = await run('tar', ['-xOf', out, 'index.json']);
    const index = JSON.parse(idx);
    assert.deepEqual(
      index.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [m.digest, m.annotations]),
      [
        [busybox.manifest.digest, { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' }],
        [multi.manifest.digest, { 'io.containerd.image.name': 'docker.io/library/multi:v1', 'org.opencontainers.image.ref.name': 'v1' }],
      ],
    );
    assert.equal((await run('tar', ['-xOf', out, 'oci-layout'])).stdout, '{"imageLayoutVersion":"1.0.0"}');
    const info = await skopeoInspect(`oci-archive:${out}:v1`, 'amd64');
    assert.equal(info.Digest, multi.manifest.digest); // the index itself…
    assert.deepEqual(info.Layers, app.layers.map((l) => l.digest)); // …resolved to the amd64 entry

    const layout = path.join(work, 'layout');
    await run('skopeo', ['--override-arch', 'amd64', 'copy', `oci-archive:${out}:v1`, `oci:${layout}:v1`]);
    const bundle = path.join(work, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
    const rootfs = path.join(bundle, 'rootfs');
    assert.equal(await fsp.readFile(path.join(rootfs, 'etc/app.conf'), 'utf8'), 'answer=42\n');
    assert.equal(await fsp.readlink(path.join(rootfs, 'bin/sh')), 'busybox');
    assert.equal((await fsp.stat(path.join(rootfs, 'bin/busybox'))).size, (await fsp.stat('/bin/busybox')).size);
  });

  it('names only the local manifests of a partially pulled index', async () => {
    const partial = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-cli-save-partial-'));
    try {
      const arm = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/arch': 'arm64\n' } });
      await multi.writeToStore(partial, 'multi:v1');
      for (const d of arm.blobs.keys()) if (!app.blobs.has(d)) await fsp.rm(path.join(partial, 'content/blobs/sha256', d.slice(7)));
      const out = path.join(work, 'partial.tar');
      const r = await runImg(['--state', partial, 'save', '--format', 'oci', '-o', out, 'multi:v1']);
      assert.equal(r.code, 0, r.stderr);
      const index = JSON.parse((await run('tar', ['-xOf', out, 'index.json'])).stdout);
      assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), [app.manifest.digest]);
      const info = await skopeoInspect(`oci-archive:${out}:v1`, 'amd64');
      assert.equal(info.Architecture, 'amd64');
    } finally {
      await fsp.rm(partial, { recursive: true, force: true });
    }
  });
});

describe('img save NAME@DIGEST', () => {
  it('finds a stored manifest by digest even without a record of that name', async () => {
    const out = path.join(work, 'bydigest.tar');
    const r = await runImg(['--state', state, 'save', '--format', 'oci', '-o', out, `other/name@${busybox.manifest.digest}`]);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse((await run('tar', ['-xOf', out, 'index.json'])).stdout);
    assert.deepEqual(index.manifests[0].annotations, { 'io.containerd.image.name': `docker.io/other/name@${busybox.manifest.digest}` });
    assert.equal(index.manifests[0].mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const missing = await runImg(['--state', state, 'save', '-o', out, `busybox@sha256:${'0'.repeat(64)}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: busybox@sha256:0{64}/);
  });
});

describe('img save | docker load', () => {
  it('loads into a docker daemon with the same layers and config', async (t) => {
    const info = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 15000 }).catch(() => null);
    if (!info) {
      t.skip('no reachable docker daemon on this host (docker load is checked only where one runs)');
      return;
    }
    const tag = `img-test-save/app-${process.pid}:1`;
    assert.equal((await runImg(['--state', state, 'tag', 'localhost:5000/team/app:1.0', tag])).code, 0);
    const out = path.join(work, 'docker-load.tar');
    assert.equal((await runImg(['--state', state, 'save', '-o', out, tag])).code, 0);
    try {
      const { stdout } = await run('docker', ['load', '-i', out], { timeout: 120000 });
      assert.match(stdout, new RegExp(`Loaded image: ${tag.replace(/[/.]/g, '\\$&')}`));
      const { stdout: inspected } = await run('docker', ['image', 'inspect', tag, '--format', '{{json .RootFS.Layers}} {{.Id}} {{.Architecture}}']);
      assert.equal(inspected.trim(), `${JSON.stringify(app.diffIds)} ${app.configDescriptor.digest} amd64`);
    } finally {
      await run('docker', ['rmi', tag]).catch(() => undefined);
    }
  });
});
