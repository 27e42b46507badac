// Caches BuildKit wrote, read by img. The fixture is the manifest and config of an
// image Debian's dockerd 20.10.24 (BuildKit v0.8) built with
// `--build-arg BUILDKIT_INLINE_CACHE=1` from
//   FROM busybox / ENV FOO=bar / WORKDIR /app / RUN echo one > /app/one.txt /
//   COPY a.txt /app/a.txt / COPY sub /app/sub / RUN cat … / ENV BAZ=qux / RUN echo $FOO …
// and pushed: its config's "moby.buildkit.cache.v0" holds v0.8's records alone (results
// under "layers", no "chains", the FROM's records without a result), their "layer"
// counting the image's 7 layers.
//
// What img can do with it: read every record with a result, each result the chain of the
// image's layers up to its "layer". Whether a step is then CACHED depends on the keys
// agreeing, and img's keys are its own (lib/solver/keys.ts), so between img and BuildKit
// they do not: the README says so; this proves the reading, not a hit.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readEnvelope } from '../../lib/cache/envelope';
import { INLINE_CACHE_FIELD } from '../../lib/cache/format';
import { loadRegistryCache } from '../../lib/cache/registry';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../../lib/images/types';
import { makeBusyboxImage, makeIndex, type BuiltImage } from '../fixtures/images';
import { REGISTRY_BIN, startRegistry, type Registry } from '../fixtures/registry';

const FIXTURES = path.join(__dirname, 'fixtures');
const manifestBytes = fs.readFileSync(path.join(FIXTURES, 'buildkit-v0.8-inline.manifest.json'));
const configBytes = fs.readFileSync(path.join(FIXTURES, 'buildkit-v0.8-inline.config.json'));
const sha = (b: Buffer | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const amd64 = { os: 'linux', architecture: 'amd64' };

const bkManifest = JSON.parse(manifestBytes.toString()) as Manifest;
const bkConfig = JSON.parse(configBytes.toString()) as ImageConfig & Record<string, string>;
const bkRecords = JSON.parse(Buffer.from(bkConfig[INLINE_CACHE_FIELD], 'base64').toString()) as { digest: string; layers?: { layer: number; createdAt: string }[] }[];
// The record of the last RUN (its result is the whole image) and of WORKDIR (base + one layer).
const LAST_RUN = 'sha256:f6c634ccdfd3c55bba4a46cfc65f18802e762e0d3c543655f74f1123227cb8b1';
const WORKDIR = 'sha256:807b3e8722c68572736f54d83fd741a5b1d69ccbef218fae52b4149a56d232ce';
const ARM64_KEY = sha('an arm64 step');

test("BuildKit v0.8's inline cache: every record with a result is read, its result the image's layers up to its 'layer'", async () => {
  const top: Descriptor = { mediaType: MediaType.DockerManifest, digest: sha(manifestBytes), size: manifestBytes.length };
  const got = await readEnvelope(top, manifestBytes, async (d) => {
    assert.equal(d.digest, bkManifest.config.digest); // only the config is read: no layer is fetched
    return configBytes;
  }, 'cache r/dk:v1');
  const withResult = bkRecords.filter((r) => r.layers?.length);
  assert.equal(withResult.length, 6); // WORKDIR, 3 RUN, 2 COPY; ENV makes none, FROM has no result inline
  assert.deepEqual([...got.keys()].sort(), withResult.map((r) => r.digest).sort());
  const chain = (n: number) => bkManifest.layers.slice(0, n).map((l, i) => ({ digest: l.digest, diffId: bkConfig.rootfs.diff_ids[i], mediaType: l.mediaType, size: l.size }));
  assert.deepEqual(got.get(LAST_RUN)!.layers, chain(7));
  assert.deepEqual(got.get(WORKDIR)!.layers, chain(2));
  assert.equal(got.get(LAST_RUN)!.created, bkRecords.find((r) => r.digest === LAST_RUN)!.layers![0].createdAt);
});

// The same records in a multi-platform image on a registry: the index's manifests are
// fetched as manifests (a registry does not serve a manifest pushed by reference under
// /blobs/), and every image's records are read, whatever the host's platform, as
// BuildKit's importer reads them: an arm64 build (or a multi-platform one) on an amd64
// host finds the arm64 image's records.
describe('an inline cache in a multi-platform image on a registry', { skip: fs.existsSync(REGISTRY_BIN) ? false : `${REGISTRY_BIN} is not installed` }, () => {
  let reg: Registry;
  let state: string;
  before(async () => {
    reg = await startRegistry();
    state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cache-interop-'));
    // An amd64 image of 7 small layers whose config carries BuildKit's field verbatim.
    const tars = Array.from({ length: 7 }, (_, i) => Buffer.alloc(1024, i + 1));
    const layers: Descriptor[] = tars.map((t) => ({ mediaType: MediaType.DockerLayer, digest: sha(t), size: t.length }));
    const config = Buffer.from(JSON.stringify({ ...bkConfig, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
    const configDescriptor: Descriptor = { mediaType: MediaType.DockerConfig, digest: sha(config), size: config.length };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: configDescriptor, layers }));
    const image = {
      blobs: new Map<Digest, Buffer>([...tars.map((t): [Digest, Buffer] => [sha(t), t]), [configDescriptor.digest, config], [sha(manifest), manifest]]),
      manifest: { mediaType: MediaType.DockerManifest, digest: sha(manifest), size: manifest.length, platform: amd64 },
      config: JSON.parse(config.toString()) as ImageConfig,
      configDescriptor,
      layers,
      diffIds: layers.map((l) => l.digest),
    } as unknown as BuiltImage;
    const other = await makeBusyboxImage({ arch: 'arm64', mediaTypes: 'docker' });
    await reg.seed('test/dk', 'multi', await makeIndex([other, image], { mediaTypes: 'docker' }));
    // The arm64 image again, with an inline cache of its own: one record, its one layer.
    const arm64Config = Buffer.from(JSON.stringify({ ...other.config, [INLINE_CACHE_FIELD]: Buffer.from(JSON.stringify([{ digest: ARM64_KEY, layers: [{ layer: 0, createdAt: '2024-01-01T00:00:00Z' }] }])).toString('base64') }));
    const arm64ConfigDesc: Descriptor = { mediaType: MediaType.DockerConfig, digest: sha(arm64Config), size: arm64Config.length };
    const arm64Manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: arm64ConfigDesc, layers: other.layers }));
    const arm64Image = {
      ...other,
      blobs: new Map<Digest, Buffer>([...other.blobs, [arm64ConfigDesc.digest, arm64Config], [sha(arm64Manifest), arm64Manifest]]),
      manifest: { mediaType: MediaType.DockerManifest, digest: sha(arm64Manifest), size: arm64Manifest.length, platform: { os: 'linux', architecture: 'arm64' } },
    } as BuiltImage;
    await reg.seed('test/dk', 'both', await makeIndex([arm64Image, image], { mediaTypes: 'docker' }));
  });
  after(async () => {
    await reg?.stop();
    if (state) fs.rmSync(state, { recursive: true, force: true });
  });

  test("the amd64 image's records are read; an image without a cache adds none", async () => {
    const got = await loadRegistryCache(`${reg.host}/test/dk:multi`, { stateDir: state });
    assert.equal(got.results.size, 6);
    assert.equal(got.results.get(LAST_RUN)!.layers.length, 7);
    assert.equal(got.results.get(WORKDIR)!.layers.length, 2);
  });

  test("every platform's records are read: the arm64 image's beside the amd64 image's", async () => {
    const got = await loadRegistryCache(`${reg.host}/test/dk:both`, { stateDir: state });
    assert.equal(got.results.size, 7);
    assert.equal(got.results.get(ARM64_KEY)!.layers.length, 1);
    assert.equal(got.results.get(LAST_RUN)!.layers.length, 7);
  });
});
