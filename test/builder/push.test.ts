// Push from build and the image format options, read back by other tools: `-o
// type=image,push=true` and `--push` to the test registry (every -t name pushed, the
// digest in --metadata-file), zstd layers read by skopeo (which converts them for
// umoci 0.4.7, which reads no zstd) and unpacked by umoci,
// force-compression recompressing the base layer, Docker media types and
// uncompressed layers in archives.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { cleanup, runAsUser, tempDir } from '../helpers/rootless';
import { build, setup, skip, type Env } from './helpers';
import { MediaType, type ImageConfig, type Manifest } from '../../lib/images/types';

const skopeo = (...args: string[]): string => execFileSync('skopeo', args, { encoding: 'utf8' });
const rawManifest = (ref: string): Manifest => JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`)) as Manifest;

describe('img build pushes and writes the formats asked for', { skip }, () => {
  let reg: Registry;
  let base: BuiltImage;
  let e: Env;
  before(async () => {
    reg = await startRegistry();
    base = await makeBusyboxImage({ extraFiles: { 'etc/base': 'push-test' } });
    await reg.seed('library/busybox', 'latest', base);
    e = await setup({
      Dockerfile: `FROM ${reg.host}/library/busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built.txt\n`,
      'hello.txt': 'hello from the context\n',
    });
  });
  after(async () => {
    await reg?.stop();
    if (e) await cleanup(e.root);
  });

  it('-o type=image,push=true,compression=zstd,force-compression=true pushes every -t name; skopeo and umoci read the zstd layers', async () => {
    const meta = path.join(e.root, 'meta.json');
    const res = await build(e, [
      '-t', `${reg.host}/team/app:zstd`, '-t', `${reg.host}/team/app:also`,
      '-o', 'type=image,push=true,compression=zstd,force-compression=true',
      '--metadata-file', meta, e.ctx,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const md = JSON.parse(fs.readFileSync(meta, 'utf8')) as Record<string, string>;
    assert.equal(md['image.name'], `${reg.host}/team/app:zstd,${reg.host}/team/app:also`);
    for (const tag of ['zstd', 'also']) {
      const inspected = JSON.parse(skopeo('inspect', '--tls-verify=false', `docker://${reg.host}/team/app:${tag}`)) as { Digest: string };
      assert.equal(inspected.Digest, md['containerimage.digest'], `${tag} was pushed with the digest --metadata-file records`);
    }
    const m = rawManifest(`${reg.host}/team/app:zstd`);
    assert.equal(m.mediaType, MediaType.OciManifest);
    assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.OciLayerZstd, MediaType.OciLayerZstd, MediaType.OciLayerZstd]);
    // force-compression: the base's gzip layer became a zstd blob of the same diffID.
    assert.notEqual(m.layers[0].digest, base.layers[0].digest);
    const config = JSON.parse(skopeo('inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.host}/team/app:zstd`)) as ImageConfig;
    assert.equal(config.rootfs.diff_ids[0], base.diffIds[0]);
    // It is stored locally too (store defaults to true for type=image).
    const ls = await runAsUser([process.execPath, '--import', 'tsx', 'lib/cli/main.ts', '-s', e.state, 'ls']);
    assert.match(ls.stdout, new RegExp(`${reg.host}/team/app:zstd`));

    // skopeo decompresses the zstd layers (converting them to gzip on the way, as umoci
    // 0.4.7 reads no zstd: "blob is not correct mediatype"), and umoci unpacks the result.
    const work = tempDir('img-push-umoci-');
    try {
      skopeo('copy', '--src-tls-verify=false', '--dest-compress-format', 'gzip', `docker://${reg.host}/team/app:zstd`, `oci:${work}/layout:app`);
      const r = await runAsUser(['umoci', 'unpack', '--rootless', '--image', `${work}/layout:app`, `${work}/bundle`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.readFileSync(`${work}/bundle/rootfs/hello.txt`, 'utf8'), 'hello from the context\n');
      assert.equal(fs.readFileSync(`${work}/bundle/rootfs/built.txt`, 'utf8'), 'built\n');
      assert.equal(fs.readFileSync(`${work}/bundle/rootfs/etc/base`, 'utf8'), 'push-test');
    } finally {
      await cleanup(work);
    }
  });

  it('--push is type=registry: pushed (base layer mounted, as it was) and not stored locally', async () => {
    const res = await build(e, ['-t', `${reg.host}/team/app:gz`, '--push', e.ctx]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /pushing .*team\/app:gz: \d+ uploaded, 1 mounted, \d+ present/);
    const m = rawManifest(`${reg.host}/team/app:gz`);
    assert.deepEqual(m.layers.map((l) => l.mediaType), [MediaType.OciLayerGzip, MediaType.OciLayerGzip, MediaType.OciLayerGzip]);
    assert.equal(m.layers[0].digest, base.layers[0].digest, 'without force-compression the base layer is pushed as pulled');
    const ls = await runAsUser([process.execPath, '--import', 'tsx', 'lib/cli/main.ts', '-s', e.state, 'ls']);
    assert.doesNotMatch(ls.stdout, /team\/app:gz/);
  });

  it('archives: oci-mediatypes=false writes Docker media types, compression=uncompressed plain tars; unknown options fail before building', async () => {
    const dockerTar = path.join(e.root, 'docker.tar');
    const ociTar = path.join(e.root, 'oci.tar');
    let res = await build(e, ['-o', `type=docker,dest=${dockerTar},oci-mediatypes=false`, e.ctx]);
    assert.equal(res.code, 0, res.stderr);
    res = await build(e, ['-o', `type=oci,dest=${ociTar},compression=uncompressed`, e.ctx]);
    assert.equal(res.code, 0, res.stderr);
    const dockerManifest = JSON.parse(skopeo('inspect', '--raw', `oci-archive:${dockerTar}`)) as Manifest;
    assert.equal(dockerManifest.mediaType, MediaType.DockerManifest);
    assert.equal(dockerManifest.config.mediaType, MediaType.DockerConfig);
    assert.deepEqual(dockerManifest.layers.map((l) => l.mediaType), [MediaType.DockerLayerGzip, MediaType.DockerLayerGzip, MediaType.DockerLayerGzip]);
    const ociManifest = JSON.parse(skopeo('inspect', '--raw', `oci-archive:${ociTar}`)) as Manifest;
    // The base layer keeps its gzip blob (no force-compression); the build's own layers are plain tars.
    assert.deepEqual(ociManifest.layers.map((l) => l.mediaType), [MediaType.OciLayerGzip, MediaType.OciLayer, MediaType.OciLayer]);
    const cfg = JSON.parse(skopeo('inspect', '--config', '--raw', `oci-archive:${ociTar}`)) as ImageConfig;
    assert.equal(ociManifest.layers[1].digest, cfg.rootfs.diff_ids[1], 'an uncompressed layer is its own diffID');

    const bad = await build(e, ['-o', `type=oci,dest=${ociTar},rewrite-timestamp=true`, e.ctx]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--output type=oci does not support the option "rewrite-timestamp"/);
    assert.doesNotMatch(bad.stderr, /#\d+ \[/, 'the build did not start');
  });
});
