// A cache that travels: two state dirs are two pods (fresh state, a fresh copy
// of the context with other mtimes and inodes). Pod A builds a two-stage
// Dockerfile and exports its cache (registry mode=max, a local directory, and
// inline); pod B imports it and builds the same thing: every step CACHED, runc
// never started (a wrapper on IMG_RUNC counts the containers), the same image
// digest under SOURCE_DATE_EPOCH, and nothing downloaded that no output needs.
// A changed context file re-runs only the steps after the COPY that reads it; a
// missing or corrupt cache is a warning.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { cleanup, rootlessUser, runImgRootless, tempDir } from '../helpers/rootless';
import { skip, stepStates, steps } from '../builder/helpers';
import { CACHE_CONFIG_MEDIA_TYPE } from '../../lib/cache/format';
import { MediaType, type Manifest } from '../../lib/images/types';

const EPOCH = '1700000000';
const skopeo = (...args: string[]): string => execFileSync('skopeo', args, { encoding: 'utf8' });
const inspectDigest = (ref: string): string => (JSON.parse(skopeo('inspect', '--tls-verify=false', `docker://${ref}`)) as { Digest: string }).Digest;

describe('a build cache shared between pods', { skip, timeout: 600_000 }, () => {
  let reg: Registry;
  let base: BuiltImage;
  let root: string;
  let runcLog: string;
  let env: NodeJS.ProcessEnv;
  let localCache: string;
  let minCache: string;
  let dockerfile: string;

  // A pod: an empty state dir and its own copy of the context, dated differently.
  const pod = (name: string, files: Record<string, string> = {}): { state: string; ctx: string } => {
    const state = path.join(root, `${name}-state`);
    const ctx = path.join(root, `${name}-ctx`);
    fs.mkdirSync(ctx, { recursive: true });
    const all = { Dockerfile: dockerfile, 'src.txt': 'source\n', 'app.txt': 'app v1\n', ...files };
    const when = new Date(Date.now() - Math.floor(Math.random() * 1e9));
    for (const [f, body] of Object.entries(all)) {
      fs.writeFileSync(path.join(ctx, f), body);
      fs.utimesSync(path.join(ctx, f), when, when);
    }
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, ctx]);
    return { state, ctx };
  };
  const runs = (): number => (fs.existsSync(runcLog) ? fs.readFileSync(runcLog, 'utf8').split('\n').filter((l) => / run /.test(` ${l} `)).length : 0);
  const img = async (state: string, args: string[]) => {
    const before = runs();
    const res = await runImgRootless(['-s', state, 'build', '--progress', 'plain', ...args], { env });
    assert.equal(res.code, 0, res.stderr);
    return { ...res, containers: runs() - before, states: steps(stepStates(res.stderr)) };
  };
  // Layer blobs a state dir holds (its content store minus JSON documents).
  const layerBlobs = (state: string): Set<string> => {
    const dir = path.join(state, 'content', 'blobs', 'sha256');
    const out = new Set<string>();
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const head = fs.readFileSync(path.join(dir, f)).subarray(0, 1).toString();
      if (head !== '{') out.add(`sha256:${f}`);
    }
    return out;
  };

  before(async () => {
    reg = await startRegistry();
    base = await makeBusyboxImage({ extraFiles: { 'etc/base': 'cache-test' } });
    await reg.seed('library/busybox', 'latest', base);
    root = tempDir('img-cache-pods-');
    localCache = path.join(root, 'cache-dir');
    minCache = path.join(root, 'cache-min');
    runcLog = path.join(root, 'runc.log');
    const wrapper = path.join(root, 'runc-counting');
    const realRunc = ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => fs.existsSync(p))!;
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${runcLog}\nexec ${realRunc} "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(runcLog, '');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) fs.chownSync(runcLog, u.uid, u.gid);
    env = { IMG_RUNC: wrapper, SOURCE_DATE_EPOCH: EPOCH };
    dockerfile = [
      `FROM ${reg.host}/library/busybox AS build`,
      'COPY src.txt /src.txt',
      'RUN cat /src.txt > /built.txt && echo compiled >> /built.txt',
      'RUN echo intermediate > /scratch.txt',
      `FROM ${reg.host}/library/busybox`,
      'COPY --from=build /built.txt /app/built.txt',
      'COPY app.txt /app/app.txt',
      'RUN cat /app/app.txt /app/built.txt > /app/final.txt',
      '',
    ].join('\n');
  });
  after(async () => {
    await reg?.stop();
    if (root) await cleanup(root);
  });

  it('pod A runs every step and exports the cache: registry mode=max (image manifest), local max and min', async () => {
    const a = pod('a');
    const res = await img(a.state, [
      '--cache-to', `type=registry,ref=${reg.host}/cache/app:max,mode=max`,
      // The index envelope, as a Docker manifest list (what older BuildKit wrote by default).
      '--cache-to', `type=registry,ref=${reg.host}/cache/app:index,mode=max,image-manifest=false,oci-mediatypes=false`,
      '--cache-to', `type=local,dest=${localCache},mode=max`,
      '--cache-to', `type=local,dest=${minCache}`,
      '-t', `${reg.host}/app:a`, '--push', a.ctx,
    ]);
    assert.equal(res.containers, 3, 'three RUN steps ran');
    assert.match(res.stderr, /exporting cache to registry/);
    assert.match(res.stderr, /exporting cache to client directory/);

    const manifest = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/cache/app:max`)) as Manifest;
    assert.equal(manifest.mediaType, MediaType.OciManifest);
    assert.equal(manifest.config.mediaType, CACHE_CONFIG_MEDIA_TYPE);
    for (const l of manifest.layers) assert.match(l.annotations?.['containerd.io/uncompressed'] ?? '', /^sha256:/);
    const image = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app:a`)) as Manifest;
    const imageLayers = new Set(image.layers.map((l) => l.digest));
    // mode=max: the build stage's layers too; mode=min: the final image's alone.
    assert.ok(manifest.layers.some((l) => !imageLayers.has(l.digest)), 'mode=max exports the build stage');
    const minIndex = JSON.parse(fs.readFileSync(path.join(minCache, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    assert.equal(minIndex.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
    const minManifest = JSON.parse(fs.readFileSync(path.join(minCache, 'blobs', 'sha256', minIndex.manifests[0].digest.slice(7)), 'utf8')) as Manifest;
    assert.deepEqual(new Set(minManifest.layers.map((l) => l.digest)), imageLayers, 'mode=min exports the final image chain');
    assert.ok(fs.existsSync(path.join(localCache, 'oci-layout')));
    const list = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/cache/app:index`)) as { mediaType: string; manifests: { mediaType: string }[] };
    assert.equal(list.mediaType, MediaType.DockerManifestList);
    assert.equal(list.manifests.at(-1)!.mediaType, CACHE_CONFIG_MEDIA_TYPE);
    assert.ok(list.manifests.slice(0, -1).every((m) => m.mediaType === MediaType.DockerLayerGzip));
  });

  it('pod B (empty state) imports the registry cache: all CACHED, no container, same digest, no layer downloaded', async () => {
    const b = pod('b');
    const res = await img(b.state, ['--cache-from', `type=registry,ref=${reg.host}/cache/app:max`, '-t', `${reg.host}/app:b`, '--push', b.ctx]);
    assert.equal(res.containers, 0, 'no RUN executed');
    assert.ok(res.states.length >= 7, res.stderr);
    for (const [name, state] of res.states) assert.equal(state, 'CACHED', `${name} ${state}`);
    assert.equal(inspectDigest(`${reg.host}/app:b`), inspectDigest(`${reg.host}/app:a`));
    // Pushed to the cache's registry: every layer mounted, none fetched.
    assert.deepEqual([...layerBlobs(b.state)], []);
  });

  it('pod C imports the local cache; the image is stored locally: only the final layers are copied in', async () => {
    const c = pod('c');
    const meta = path.join(root, 'c-meta.json');
    const res = await img(c.state, ['--cache-from', `type=local,src=${localCache}`, '-t', 'app:c', '--metadata-file', meta, c.ctx]);
    assert.equal(res.containers, 0);
    for (const [name, state] of res.states) assert.equal(state, 'CACHED', `${name} ${state}`);
    const digest = (JSON.parse(fs.readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'];
    assert.equal(digest, inspectDigest(`${reg.host}/app:a`));
    const image = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app:a`)) as Manifest;
    assert.deepEqual(layerBlobs(c.state), new Set(image.layers.map((l) => l.digest)), 'the build stage was not copied');
  });

  it('inline: pod A adds the records to its image; pod D builds from that image alone', async () => {
    const a = { state: path.join(root, 'a-state'), ctx: path.join(root, 'a-ctx') };
    const resA = await img(a.state, ['--cache-to', 'type=inline', '-t', `${reg.host}/app:inline`, '--push', a.ctx]);
    assert.equal(resA.containers, 0, 'pod A has it all locally');
    const config = JSON.parse(skopeo('inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.host}/app:inline`)) as Record<string, string>;
    const records = JSON.parse(Buffer.from(config['moby.buildkit.cache.v0'], 'base64').toString()) as { layers?: { layer: number }[] }[];
    assert.ok(records.some((r) => r.layers?.length), 'records with results on the image chain');

    const d = pod('d');
    const res = await img(d.state, ['--cache-from', `${reg.host}/app:inline`, '--cache-to', 'type=inline', '-t', `${reg.host}/app:inline-d`, '--push', d.ctx]);
    assert.equal(res.containers, 0);
    for (const [name, state] of res.states) assert.equal(state, 'CACHED', `${name} ${state}`);
    assert.equal(inspectDigest(`${reg.host}/app:inline-d`), inspectDigest(`${reg.host}/app:inline`));
  });

  it('a changed context file re-runs only the steps after its COPY; a missing or corrupt cache is a warning', async () => {
    const e = pod('e', { 'app.txt': 'app v2\n' });
    const broken = path.join(root, 'broken-cache');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'index.json'), '{"manifests": [');
    const notADir = path.join(root, 'a-file');
    fs.writeFileSync(notADir, '');
    const res = await img(e.state, [
      '--cache-from', `type=registry,ref=${reg.host}/cache/nothing:here`,
      '--cache-from', `type=local,src=${broken}`,
      '--cache-from', `type=registry,ref=${reg.host}/cache/app:index`,
      '--cache-to', `type=local,dest=${notADir}/cache,ignore-error=true`,
      '-o', `type=local,dest=${path.join(root, 'e-out')}`, e.ctx,
    ]);
    assert.match(res.stderr, new RegExp(`WARN cannot import cache from ${reg.host}/cache/nothing:here: .*building without it`));
    assert.match(res.stderr, new RegExp(`WARN cannot import cache from ${broken}: .*index.json is not an OCI index`));
    assert.match(res.stderr, new RegExp(`WARN cannot export cache to ${notADir}/cache: .*\\(ignore-error=true\\)`));
    assert.equal(res.containers, 1, 'only the last RUN ran');
    const byName = new Map(res.states);
    const find = (part: string) => [...byName].find(([n]) => n.includes(part))?.[1];
    assert.equal(find('RUN cat /src.txt'), 'CACHED');
    assert.equal(find('COPY --from=build'), 'CACHED');
    assert.equal(find('COPY app.txt'), 'DONE');
    assert.equal(find('RUN cat /app/app.txt'), 'DONE');
    assert.equal(fs.readFileSync(path.join(root, 'e-out', 'app', 'final.txt'), 'utf8'), 'app v2\nsource\ncompiled\n');
  });
});
