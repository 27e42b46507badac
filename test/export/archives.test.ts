// The archive writers as a library (build -o type=docker|oci uses them directly).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import { after, before, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { writeDockerArchive } from '../../lib/export/docker-archive';
import { writeOciArchive } from '../../lib/export/oci-layout';
import { saveImages } from '../../lib/export/save';
import { ImgError } from '../../lib/util/errors';
import { makeBusyboxImage, makeIndex, type BuiltImage } from '../fixtures/images';

const run = promisify(execFile);
let state: string;
let work: string;
let img: BuiltImage;
before(async () => {
  state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-export-'));
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-export-out-'));
  img = await makeBusyboxImage({ extraFiles: { 'hello.txt': 'hello\n' } });
  await img.writeToStore(state, 'x');
});
after(async () => {
  await fsp.rm(state, { recursive: true, force: true });
  await fsp.rm(work, { recursive: true, force: true });
});

describe('archive writers', () => {
  it('an unnamed image: docker archive with RepoTags null, OCI index entry without names', async () => {
    const store = new ContentStore(state);
    const d = path.join(work, 'unnamed-docker.tar');
    await writeDockerArchive(store, [{ target: img.manifest }], fs.createWriteStream(d));
    const manifest = JSON.parse((await run('tar', ['-xOf', d, 'manifest.json'])).stdout);
    assert.deepEqual(manifest, [{ Config: `blobs/sha256/${img.configDescriptor.digest.slice(7)}`, RepoTags: null, Layers: [`blobs/sha256/${img.layers[0].digest.slice(7)}`] }]);
    assert.equal((await run('tar', ['-tf', d])).stdout.includes('repositories'), false);
    const inspected = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${d}`])).stdout);
    assert.deepEqual(inspected.Layers, img.diffIds);

    const o = path.join(work, 'unnamed-oci.tar');
    await writeOciArchive(store, [{ target: img.manifest }], fs.createWriteStream(o));
    const index = JSON.parse((await run('tar', ['-xOf', o, 'index.json'])).stdout);
    assert.deepEqual(index.manifests, [{ mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size, platform: img.manifest.platform }]);
    const layout = path.join(work, 'layout');
    await fsp.mkdir(layout);
    await run('tar', ['-xf', o, '-C', layout]);
    // umoci reads the layout and unpacks the tree (by digest reference is not supported; name it first).
    const named = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8'));
    named.manifests[0].annotations = { 'org.opencontainers.image.ref.name': 't' };
    await fsp.writeFile(path.join(layout, 'index.json'), JSON.stringify(named));
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, path.join(work, 'bundle')]);
    assert.equal(await fsp.readFile(path.join(work, 'bundle', 'rootfs', 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('an incomplete image fails before any byte is written, naming the missing blob', async () => {
    const partial = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-export-partial-'));
    try {
      await img.writeToStore(partial, 'x');
      const store = new ContentStore(partial);
      await store.delete(img.layers[0].digest);
      let written = 0;
      const sink = () =>
        new Writable({
          write(c, _e, cb) {
            written += c.length;
            cb();
          },
        });
      for (const writer of [writeDockerArchive, writeOciArchive]) {
        await assert.rejects(
          writer(store, [{ name: 'x', target: img.manifest }], sink()),
          (e: unknown) => e instanceof ImgError && e.message.includes('incomplete') && e.message.includes(img.layers[0].digest),
        );
      }
      assert.equal(written, 0);
    } finally {
      await fsp.rm(partial, { recursive: true, force: true });
    }
  });

  it('a docker-media-type index in an OCI archive keeps every platform', async () => {
    const arm = await makeBusyboxImage({ arch: 'arm', variant: 'v7', mediaTypes: 'docker' });
    const amd = await makeBusyboxImage({ mediaTypes: 'docker' });
    const list = await makeIndex([amd, arm], { mediaTypes: 'docker' });
    const s2 = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-export-list-'));
    try {
      await list.writeToStore(s2, 'list:1');
      const o = path.join(work, 'list.tar');
      await writeOciArchive(new ContentStore(s2), [{ name: 'list:1', target: list.manifest }], fs.createWriteStream(o));
      // Media types are kept as stored (digests stay the pulled ones, as docker and containerd
      // export them). skopeo 1.9 resolves a ref name only on OCI-typed index.json entries, so
      // this single-entry archive is read without one.
      const index = JSON.parse((await run('tar', ['-xOf', o, 'index.json'])).stdout);
      assert.deepEqual(index.manifests.map((m: { mediaType: string }) => m.mediaType), ['application/vnd.docker.distribution.manifest.list.v2+json']);
      for (const [arch, variant, want] of [['amd64', '', amd], ['arm', 'v7', arm]] as const) {
        const args = ['--override-arch', arch, ...(variant ? ['--override-variant', variant] : []), 'inspect', `oci-archive:${o}`];
        const info = JSON.parse((await run('skopeo', args)).stdout);
        assert.equal(info.Architecture, arch);
        assert.deepEqual(info.Layers, want.layers.map((l) => l.digest));
      }
    } finally {
      await fsp.rm(s2, { recursive: true, force: true });
    }
  });

  // What containerd's archive exporter (BuildKit's oci/docker exporters) writes: records
  // sorted by name, blobs and oci-layout 0444, the JSON files 0644, directories 0755, mtime 0;
  // a build's index.json entries carry org.opencontainers.image.created and the names.
  it('entries in name order with containerd modes; created and name annotations; no repositories for a build', async () => {
    const store = new ContentStore(state);
    const created = '2021-02-03T04:05:06Z';
    const o = path.join(work, 'sorted-oci.tar');
    await writeOciArchive(store, [{ name: 'docker.io/library/a:1', target: img.manifest }, { name: 'b', target: img.manifest }], fs.createWriteStream(o), { created });
    const blobs = [...img.blobs.keys()].map((d) => `blobs/sha256/${d.slice(7)}`).sort();
    const headers = await tarHeaders(o);
    assert.deepEqual(headers.map((h) => h.name), ['blobs/', 'blobs/sha256/', ...blobs, 'index.json', 'oci-layout']);
    for (const h of headers) {
      const want = h.type === 'directory' ? 0o755 : h.name === 'index.json' ? 0o644 : 0o444;
      assert.equal(h.mode, want, h.name);
      assert.equal(h.mtime?.getTime(), 0, h.name);
    }
    const index = JSON.parse((await run('tar', ['-xOf', o, 'index.json'])).stdout);
    const { mediaType, digest, size } = img.manifest;
    assert.deepEqual(index.manifests, [
      { mediaType, digest, size, annotations: { 'io.containerd.image.name': 'docker.io/library/a:1', 'org.opencontainers.image.created': created, 'org.opencontainers.image.ref.name': '1' }, platform: img.manifest.platform },
      { mediaType, digest, size, annotations: { 'io.containerd.image.name': 'docker.io/library/b:latest', 'org.opencontainers.image.created': created, 'org.opencontainers.image.ref.name': 'latest' }, platform: img.manifest.platform },
    ].map((m) => (m.platform ? m : (({ platform: _p, ...r }) => r)(m))));
    assert.equal((await run('skopeo', ['inspect', `oci-archive:${o}:1`])).stdout.includes(img.manifest.digest), true);

    const d = path.join(work, 'sorted-docker.tar');
    await writeDockerArchive(store, [{ name: 'a:1', target: img.manifest }], fs.createWriteStream(d), { created, repositories: false });
    assert.deepEqual((await tarHeaders(d)).map((h) => h.name), ['blobs/', 'blobs/sha256/', ...blobs, 'index.json', 'manifest.json', 'oci-layout']);
    assert.equal(JSON.parse((await run('tar', ['-xOf', d, 'index.json'])).stdout).manifests[0].annotations['org.opencontainers.image.created'], created);
    assert.deepEqual(JSON.parse((await run('skopeo', ['inspect', `docker-archive:${d}:a:1`])).stdout).Layers, img.diffIds);
    // img save (docker save's format) keeps `repositories`, sorted last, and dates nothing.
    const saved = path.join(work, 'sorted-save.tar');
    await writeDockerArchive(store, [{ name: 'a:1', target: img.manifest }], fs.createWriteStream(saved));
    assert.deepEqual((await tarHeaders(saved)).map((h) => h.name).slice(-4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    assert.equal(JSON.parse((await run('tar', ['-xOf', saved, 'index.json'])).stdout).manifests[0].annotations['org.opencontainers.image.created'], undefined);
  });
});

describe('img save', () => {
  it('a name given twice (in any spelling) is saved once, as docker save', async () => {
    const out = path.join(work, 'twice.tar');
    await saveImages(state, ['x', 'x:latest', 'docker.io/library/x'], { output: out });
    const index = JSON.parse((await run('tar', ['-xOf', out, 'index.json'])).stdout);
    assert.equal(index.manifests.length, 1);
    assert.deepEqual(JSON.parse((await run('tar', ['-xOf', out, 'manifest.json'])).stdout)[0].RepoTags, ['x:latest']);
  });
});

async function tarHeaders(file: string): Promise<tarStream.Header[]> {
  const out: tarStream.Header[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (h, body, next) => {
    out.push(h);
    body.on('end', next);
    body.resume();
  });
  await pipeline(fs.createReadStream(file), extract);
  return out;
}
