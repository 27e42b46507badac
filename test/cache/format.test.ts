// BuildKit's cache format as img writes and reads it: the config's JSON shape
// (Go's encoding/json: "parent" omitted when 0, createdAt always there), the
// three envelopes, and a config laid out exactly as BuildKit's marshaller lays
// it out (parents by index, selectors, chains, a record without results) read
// back by key.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { buildConfig, CACHE_CONFIG_MEDIA_TYPE, goTime, marshalConfig, parseConfig, type ExportEntry } from '../../lib/cache/format';
import { makeEnvelope, readEnvelope } from '../../lib/cache/envelope';
import { inlineCacheField } from '../../lib/cache/inline';
import { MediaType, type Descriptor, type Digest, type LayerBlob } from '../../lib/images/types';
import { ContentError } from '../../lib/util/errors';

const d = (s: string): Digest => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const blob = (name: string): LayerBlob => ({ digest: d(`blob ${name}`), diffId: d(`diff ${name}`), mediaType: MediaType.OciLayerGzip, size: name.length * 100 });
const host = { os: 'linux', architecture: 'amd64' };

// base ← run ← (copy from build) ; build stage: base ← build-run
const base = blob('base');
const run = blob('run');
const buildRun = blob('build-run');
const entries: ExportEntry[] = [
  { key: d('k-base'), inputs: [], result: { layers: [base], created: '2024-05-01T10:00:00.120Z' } },
  { key: d('k-build'), inputs: [d('k-base')], result: { layers: [base, buildRun], created: '2024-05-01T10:00:01Z' } },
  { key: d('k-run'), inputs: [d('k-base')], result: { layers: [base, run], created: '2024-05-01T10:00:02.5Z' } },
  { key: d('k-ctx'), inputs: [] }, // the build context: a record, never a result
  { key: d('k-copy'), inputs: [d('k-run'), d('k-build'), d('k-ctx')] },
];

test('the config: one layer per chain position, records sorted by key, Go JSON conventions', () => {
  const { config, blobs } = buildConfig(entries);
  assert.equal(config.layers.length, 3);
  assert.equal(config.layers[0].blob, base.digest);
  assert.equal(config.layers[0].parent, -1);
  assert.deepEqual(config.layers.slice(1).map((l) => l.parent), [0, 0]);
  assert.deepEqual(config.records.map((r) => r.digest), [...entries.map((e) => e.key)].sort());
  assert.equal(blobs.size, 3);
  const copy = config.records.find((r) => r.digest === d('k-copy'))!;
  assert.deepEqual(copy.inputs.map((l) => config.records[l[0].link].digest), [d('k-run'), d('k-build'), d('k-ctx')]);
  assert.deepEqual(copy.results, []);

  const json = JSON.parse(marshalConfig(config));
  // Go's omitempty: the root layer says -1, its children (parent 0) say nothing.
  assert.deepEqual(json.layers[0], { blob: base.digest, parent: -1 });
  assert.deepEqual(Object.keys(json.layers[1]), ['blob']);
  const runRec = json.records.find((r: { digest: string }) => r.digest === d('k-run'));
  assert.deepEqual(Object.keys(runRec), ['layers', 'digest', 'inputs']);
  assert.equal(runRec.layers[0].createdAt, '2024-05-01T10:00:02.5Z');
  assert.deepEqual(Object.keys(json.records.find((r: { digest: string }) => r.digest === d('k-ctx'))), ['digest']);
  assert.equal(goTime(undefined), '0001-01-01T00:00:00Z');
  assert.equal(goTime('2024-05-01T10:00:00.100Z'), '2024-05-01T10:00:00.1Z');
  // The same entries in another order: the same bytes.
  assert.equal(marshalConfig(buildConfig([...entries].reverse()).config), marshalConfig(config));
});

test('envelopes: image manifest (default), OCI index and Docker manifest list read back to the same results', async () => {
  const { config, blobs } = buildConfig(entries);
  for (const o of [
    { ociMediaTypes: true, imageManifest: true },
    { ociMediaTypes: true, imageManifest: false },
    { ociMediaTypes: false, imageManifest: false },
  ]) {
    const env = makeEnvelope(config, blobs, new Map([[run.digest, '2024-05-01T10:00:02.5Z']]), o);
    const doc = JSON.parse(env.manifest.bytes.toString());
    if (o.imageManifest) {
      assert.equal(doc.mediaType, MediaType.OciManifest);
      assert.equal(doc.config.mediaType, CACHE_CONFIG_MEDIA_TYPE);
      assert.equal(doc.layers.length, 3);
    } else {
      assert.equal(doc.mediaType, o.ociMediaTypes ? MediaType.OciIndex : MediaType.DockerManifestList);
      assert.equal(doc.manifests.at(-1).mediaType, CACHE_CONFIG_MEDIA_TYPE);
    }
    const layers: Descriptor[] = o.imageManifest ? doc.layers : doc.manifests.slice(0, -1);
    for (const l of layers) assert.ok(l.annotations?.['containerd.io/uncompressed'], 'every layer carries its diffID');
    assert.equal(layers.find((l) => l.digest === run.digest)!.annotations!['buildkit/createdat'], '2024-05-01T10:00:02.5Z');
    assert.equal(layers[0].mediaType, o.ociMediaTypes ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip);
    const read = async (want: Descriptor) => {
      assert.equal(want.digest, env.config.desc.digest);
      return env.config.bytes;
    };
    const got = await readEnvelope(env.manifest.desc, env.manifest.bytes, read, 'test cache');
    assert.deepEqual([...got.keys()].sort(), [d('k-base'), d('k-build'), d('k-run')].sort());
    assert.deepEqual(got.get(d('k-run'))!.layers.map((l) => [l.digest, l.diffId]), [[base.digest, base.diffId], [run.digest, run.diffId]]);
    assert.equal(got.get(d('k-run'))!.created, '2024-05-01T10:00:02.5Z');
  }
});

test('a config as BuildKit writes it: selectors, chains, parent 0 left out, zero createdAt, an unlisted blob', async () => {
  const [l0, l1, l2, l3] = ['a', 'b', 'c', 'missing'].map(blob);
  const cfg = {
    layers: [
      { blob: l0.digest, parent: -1 },
      { blob: l1.digest }, // parent 0, omitted by Go
      { blob: l2.digest, parent: 1 },
      { blob: l3.digest, parent: 1 },
    ],
    records: [
      { digest: d('bk-src') },
      { layers: [{ layer: 2, createdAt: '2023-01-02T03:04:05.123456789Z' }], digest: d('bk-exec'), inputs: [[{ selector: 'sha256:sel', link: 0 }]] },
      { chains: [{ layers: [0, 1], createdAt: '0001-01-01T00:00:00Z' }], digest: d('bk-merge'), inputs: [[{ link: 1 }], [{ link: 0 }]] },
      { layers: [{ layer: 3, createdAt: '2023-01-02T03:04:05Z' }], digest: d('bk-gone') },
    ],
  };
  const configBytes = Buffer.from(JSON.stringify(cfg));
  const configDesc = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: d(configBytes.toString()), size: configBytes.length };
  const listed = [l0, l1, l2].map((b) => ({ mediaType: MediaType.DockerLayerGzip, digest: b.digest, size: b.size, annotations: { 'containerd.io/uncompressed': b.diffId } }));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [...listed, configDesc] }));
  const got = await readEnvelope({ mediaType: MediaType.DockerManifestList, digest: d(index.toString()), size: index.length }, index, async () => configBytes, 'buildkit cache');
  assert.deepEqual(got.get(d('bk-exec'))!.layers.map((l) => l.digest), [l0.digest, l1.digest, l2.digest]);
  assert.equal(got.get(d('bk-exec'))!.created, '2023-01-02T03:04:05.123456789Z');
  assert.deepEqual(got.get(d('bk-merge'))!.layers.map((l) => l.digest), [l0.digest, l1.digest]);
  assert.equal(got.get(d('bk-merge'))!.created, undefined, 'the zero time is no time');
  assert.equal(got.has(d('bk-src')), false, 'a record without results is no hit');
  assert.equal(got.has(d('bk-gone')), false, 'a result whose blob the envelope does not list is skipped');
});

test('corrupt configs are one ContentError naming the cache, never a crash', () => {
  const bad: [unknown, RegExp][] = [
    ['nope', /not a JSON object/],
    [{ layers: [{ blob: 'x' }] }, /layer 0 has no blob digest/],
    [{ layers: [{ blob: d('a'), parent: 7 }] }, /layer 0 names parent 7/],
    [{ layers: [], records: [{ layers: [{ layer: 0 }] }] }, /record 0 names layer 0/],
    [{ records: [{ inputs: [[{ link: 5 }]] }] }, /record 0 links to record 5/],
  ];
  for (const [json, why] of bad) assert.throws(() => parseConfig(json, 'cache r/x:1'), (e: Error) => e instanceof ContentError && why.test(e.message) && /cache r\/x:1/.test(e.message));
});

test('inline: records only, result layers count the image layers; results off the image chain dropped', () => {
  const field = inlineCacheField(entries, [base.digest, run.digest]);
  assert.ok(field);
  const records = JSON.parse(Buffer.from(field!, 'base64').toString()) as { digest: string; layers?: { layer: number }[] }[];
  const byKey = new Map(records.map((r) => [r.digest, r]));
  assert.deepEqual(byKey.get(d('k-base'))!.layers!.map((x) => x.layer), [0]);
  assert.deepEqual(byKey.get(d('k-run'))!.layers!.map((x) => x.layer), [1]);
  assert.equal(byKey.get(d('k-build'))!.layers, undefined, 'the build stage is not on the image chain');
  assert.equal(inlineCacheField(entries, [blob('other').digest]), undefined);
});

test('an image with an inline cache is read through its manifest and config', async () => {
  const field = inlineCacheField(entries, [base.digest, run.digest])!;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [base.diffId, run.diffId] }, 'moby.buildkit.cache.v0': field }));
  const configDesc = { mediaType: MediaType.OciConfig, digest: d(config.toString()), size: config.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: [base, run].map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })) }));
  const mdesc = { mediaType: MediaType.OciManifest, digest: d(manifest.toString()), size: manifest.length, platform: host };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [mdesc] }));
  const blobs = new Map([[configDesc.digest, config], [mdesc.digest, manifest]]);
  const got = await readEnvelope({ mediaType: MediaType.OciIndex, digest: d(index.toString()), size: index.length }, index, async (x) => blobs.get(x.digest)!, 'inline');
  assert.deepEqual(got.get(d('k-run'))!.layers, [base, run].map((b) => ({ digest: b.digest, diffId: b.diffId, mediaType: b.mediaType, size: b.size })));
});
