// Pull against the real distribution registry: media types, platform choice, by digest,
// corrupted/truncated blobs through a faulty proxy, retries, and the no-op fast path.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import { MediaType, type Index, type Manifest } from '../../lib/images/types';
import { pullImage } from '../../lib/registry/pull';
import { connectionError } from '../../lib/registry/errors';
import { closeAgents } from '../../lib/registry/transport';
import { ContentError, DiskFullError, NotFoundError, RegistryError, TimeoutError } from '../../lib/util/errors';
import { VERSION } from '../../lib/util/version';
import { startFaultyProxy, type FaultyProxy } from '../fixtures/faulty-proxy';
import { imageFromLayer, makeBusyboxImage, makeIndex, type BuiltImage } from '../fixtures/images';
import { gzip, tarOf } from '../fixtures/layers';
import { startRegistry, type Registry } from '../fixtures/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-pull-test-'));
let n = 0;
const freshState = (): string => fs.mkdtempSync(path.join(tmp, `state${n++}-`));

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

describe('pull (library)', () => {
  let reg: Registry;
  let proxy: FaultyProxy;
  let docker: BuiltImage;
  let oci: BuiltImage;
  let amd64: BuiltImage;
  let arm64: BuiltImage;
  let armv7: BuiltImage;
  let index: BuiltImage;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultyProxy({ targetPort: reg.port });
    docker = await makeBusyboxImage({ mediaTypes: 'docker', extraFiles: { 'etc/flavour': 'docker' } });
    oci = await makeBusyboxImage({ extraFiles: { 'etc/flavour': 'oci' } });
    amd64 = await makeBusyboxImage({ arch: 'amd64', extraFiles: { 'etc/arch': 'amd64' } });
    arm64 = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/arch': 'arm64' } });
    armv7 = await makeBusyboxImage({ arch: 'arm', variant: 'v7', extraFiles: { 'etc/arch': 'armv7' } });
    index = await makeIndex([amd64, arm64, armv7]);
    await reg.seed('library/busybox', 'docker', docker);
    await reg.seed('library/busybox', 'oci', oci);
    await reg.seed('multi/busybox', 'latest', index);
  });

  after(async () => {
    await closeAgents();
    await proxy?.stop();
    await reg?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pulls a Docker schema2 image: manifest, config and layer verified into the store, name recorded', async () => {
    const state = freshState();
    const res = await pullImage(`${reg.host}/library/busybox:docker`, { stateDir: state });
    assert.equal(res.name, `${reg.host}/library/busybox:docker`);
    assert.equal(res.target.digest, docker.manifest.digest);
    assert.equal(res.target.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const store = new ContentStore(state);
    for (const [digest, bytes] of docker.blobs) assert.deepEqual(await store.readBytes(digest), bytes, digest);
    const rec = await new ImageStore(state).get(res.name);
    assert.equal(rec?.target.digest, docker.manifest.digest);
    assert.equal(res.size, [...docker.blobs.values()].reduce((a, b) => a + b.length, 0));
    // The pull origin is remembered for cross-repository mounts on push.
    const sources = JSON.parse(fs.readFileSync(path.join(state, 'registry', 'sources.json'), 'utf8')) as Record<string, string[]>;
    assert.deepEqual(sources[docker.layers[0].digest], [`${reg.host}/library/busybox`]);
  });

  it('pulls an OCI image', async () => {
    const state = freshState();
    const res = await pullImage(`${reg.host}/library/busybox:oci`, { stateDir: state });
    assert.equal(res.target.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(res.target.digest, oci.manifest.digest);
    assert.equal(res.upToDate, false);
    assert.ok(await new ContentStore(state).has(oci.layers[0].digest));
  });

  it('chooses the host platform from an index and keeps only that platform locally', async () => {
    const state = freshState();
    const res = await pullImage(`${reg.host}/multi/busybox`, { stateDir: state, platform: { os: 'linux', architecture: 'amd64' } });
    assert.equal(res.target.digest, index.manifest.digest);
    assert.equal(res.manifest.digest, amd64.manifest.digest);
    const store = new ContentStore(state);
    assert.ok(await store.has(index.manifest.digest), 'index stored');
    assert.ok(await store.has(amd64.configDescriptor.digest));
    assert.equal(await store.has(arm64.manifest.digest), false, 'other platforms are not downloaded');
    assert.equal(await store.has(arm64.configDescriptor.digest), false);
    const stored = await store.readJson<Index>(index.manifest.digest);
    assert.equal(stored.manifests.length, 3, 'the index itself is kept whole');
  });

  it('honours a requested platform, with arm variant rules', async () => {
    const state = freshState();
    const a = await pullImage(`${reg.host}/multi/busybox`, { stateDir: state, platform: { os: 'linux', architecture: 'arm64' }, explicitPlatform: true });
    assert.equal(a.manifest.digest, arm64.manifest.digest);
    // "arm" means arm/v7 by default.
    const b = await pullImage(`${reg.host}/multi/busybox`, { stateDir: state, platform: { os: 'linux', architecture: 'arm' }, explicitPlatform: true });
    assert.equal(b.manifest.digest, armv7.manifest.digest);
    await assert.rejects(
      pullImage(`${reg.host}/multi/busybox`, { stateDir: state, platform: { os: 'linux', architecture: 's390x' }, explicitPlatform: true }),
      (err: Error & { hint?: string }) => {
        assert.match(err.message, /no matching manifest for linux\/s390x/);
        assert.match(err.hint ?? '', /linux\/amd64, linux\/arm64, linux\/arm\/v7/);
        assert.ok(err instanceof NotFoundError);
        return true;
      },
    );
  });

  it('pulls a Docker manifest list that skopeo pushed (converted from an OCI layout)', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'oci-'));
    await index.writeOciLayout(dir, 'multi');
    execFileSync('skopeo', ['copy', '--quiet', '--all', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${dir}:multi`, `docker://${reg.host}/skopeo/multi:v2`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const state = freshState();
    const res = await pullImage(`${reg.host}/skopeo/multi:v2`, { stateDir: state, platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(res.target.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(res.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const manifest = await new ContentStore(state).readJson<Manifest>(res.manifest.digest);
    assert.equal(manifest.layers[0].digest, arm64.layers[0].digest);
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('refuses a single-platform image that does not match an explicit --platform', async () => {
    await assert.rejects(
      pullImage(`${reg.host}/library/busybox:oci`, { stateDir: freshState(), platform: { os: 'linux', architecture: 'arm64' }, explicitPlatform: true }),
      (err: Error) => err instanceof NotFoundError && /is for linux\/amd64, not linux\/arm64/.test(err.message),
    );
  });

  it('pulls by digest, and a second pull by digest needs no registry at all', async () => {
    const state = freshState();
    const ref = `${reg.host}/library/busybox@${oci.manifest.digest}`;
    const res = await pullImage(ref, { stateDir: state });
    assert.equal(res.name, ref);
    assert.equal(res.target.digest, oci.manifest.digest);
    // Through a proxy that answers every request with 503: the fast path never asks.
    proxy.failRequests('/v2/', 503, 1000);
    try {
      const again = await pullImage(`${proxy.host}/library/busybox@${oci.manifest.digest}`, { stateDir: state });
      assert.equal(again.upToDate, true);
    } finally {
      proxy.failRequests('/v2/', 503, 0);
    }
  });

  it('a pull of an image already stored downloads nothing but re-checks the tag with a HEAD', async () => {
    const state = freshState();
    await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
    const before = proxy.requests.length;
    const res = await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
    assert.equal(res.upToDate, true);
    assert.equal(res.downloaded, 0);
    const seen = proxy.requests.slice(before);
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.path}`),
      [`HEAD /v2/library/busybox/manifests/oci`],
    );
    assert.equal(seen[0].userAgent, `img/${VERSION}`);
  });

  it('a blob corrupted on every attempt fails with a digest error and leaves nothing stored', async () => {
    const state = freshState();
    proxy.setFault(oci.layers[0].digest, 'corrupt', Infinity);
    try {
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state }), (err: Error & { hint?: string }) => {
        assert.match(err.message, new RegExp(`blob ${oci.layers[0].digest} from ${proxy.host}/library/busybox failed after 5 attempts: digest mismatch`));
        assert.match(err.hint ?? '', /nothing was stored/);
        assert.ok(err instanceof ContentError, 'corrupt on every attempt: a content error');
        return true;
      });
    } finally {
      proxy.setFault(undefined);
    }
    const store = new ContentStore(state);
    assert.equal(await store.has(oci.layers[0].digest), false);
    assert.deepEqual(listDir(path.join(state, 'ingest')), [], 'no partial download left behind');
    assert.equal(await new ImageStore(state).get(`${proxy.host}/library/busybox:oci`), null, 'no image named');
  });

  it('a blob corrupted once is fetched again; one cut off midway resumes with a Range request', async () => {
    for (const fault of ['corrupt', 'truncate'] as const) {
      const state = freshState();
      const faultsBefore = proxy.faults();
      const requestsBefore = proxy.requests.length;
      proxy.setFault(oci.layers[0].digest, fault, 1);
      const res = await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
      assert.equal(proxy.faults() - faultsBefore, 1, `${fault}: one damaged response`);
      const gets = proxy.requests.slice(requestsBefore).filter((r) => r.method === 'GET' && r.path.endsWith(oci.layers[0].digest));
      assert.deepEqual(
        gets.map((g) => g.status),
        fault === 'truncate' ? [200, 206] : [200, 200],
        `${fault}: ${fault === 'truncate' ? 'the rest was asked for' : 'the whole blob was fetched again'}`,
      );
      assert.equal(res.target.digest, oci.manifest.digest);
      assert.deepEqual(await new ContentStore(state).readBytes(oci.layers[0].digest), oci.blobs.get(oci.layers[0].digest));
      assert.deepEqual(listDir(path.join(state, 'ingest')), []);
    }
  });

  it('a layer that does not decompress, or whose config lists another diff_id, fails naming image and layer; nothing is named', async () => {
    const tar = await tarOf([{ name: 'etc/' , type: 'directory' }, { name: 'etc/motd', body: 'hello\n'.repeat(5000) }]);
    const gz = gzip(tar);
    const badCrc = Buffer.from(gz);
    badCrc[badCrc.length - 6] ^= 0xff; // the trailer's CRC-32
    const cases = [
      { tag: 'cut-half', image: imageFromLayer({ tar, gz: gz.subarray(0, gz.length >> 1) }), want: /does not decompress: .*(ends early|corrupt|unexpected end)/ },
      { tag: 'cut-trailer', image: imageFromLayer({ tar, gz: gz.subarray(0, gz.length - 8) }), want: /does not decompress/ },
      { tag: 'bad-crc', image: imageFromLayer({ tar, gz: badCrc }), want: /does not decompress/ },
      // The layer is a fine gzip of another tar than the one the config names.
      { tag: 'wrong-diffid', image: imageFromLayer({ tar, gz: gzip(Buffer.concat([tar, Buffer.alloc(512)])) }), want: /decompresses to sha256:[0-9a-f]{64}, but the image config lists sha256:/ },
    ];
    for (const c of cases) {
      await reg.seed('broken/layer', c.tag, c.image);
      const state = freshState();
      const before = proxy.requests.length;
      const name = `${proxy.host}/broken/layer:${c.tag}`;
      await assert.rejects(pullImage(name, { stateDir: state }), (err: Error & { hint?: string }) => {
        assert.ok(err instanceof ContentError, `${c.tag}: a content error (${err.constructor.name}: ${err.message})`);
        assert.match(err.message, c.want, c.tag);
        assert.ok(err.message.includes(`layer 1 of 1 (${c.image.layers[0].digest}) of image ${name}`), `${c.tag}: names image and layer: ${err.message}`);
        assert.match(err.hint ?? '', /nothing was (stored|named)/);
        return true;
      });
      const gets = proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.path.endsWith(c.image.layers[0].digest));
      assert.equal(gets.length, 1, `${c.tag}: bytes that match their digest are not fetched again`);
      assert.equal(await new ImageStore(state).get(name), null, `${c.tag}: no image named`);
      assert.deepEqual(listDir(path.join(state, 'ingest')), [], `${c.tag}: no partial download left`);
      // A layer that does not decompress is not stored; a sound one the config misdescribes may stay for GC.
      if (c.tag !== 'wrong-diffid') assert.equal(await new ContentStore(state).has(c.image.layers[0].digest), false, `${c.tag}: layer not stored`);
    }
    // The sound image of the same tar pulls, through the verifier.
    await reg.seed('broken/layer', 'sound', imageFromLayer({ tar, gz }));
    const res = await pullImage(`${proxy.host}/broken/layer:sound`, { stateDir: freshState() });
    assert.equal(res.upToDate, false);
  });

  it('a full disk while storing is a DiskFullError naming the ingest file and the space left; nothing half-written stays', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root (CI runs the suite as root)' }, async () => {
    const state = freshState();
    // Room for the config and the store's own files, not for the 1 MiB layer.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', state]);
    try {
      const name = `${reg.host}/library/busybox:oci`;
      await assert.rejects(pullImage(name, { stateDir: state }), (err: Error & { hint?: string }) => {
        assert.ok(err instanceof DiskFullError, `${err.constructor.name}: ${err.message}`);
        // The layer fills the disk; it or the config (fetched beside it) is the one refused.
        const m = new RegExp(`^no space left for blob (sha256:[0-9a-f]{64}) on the filesystem of ${state}/ingest/\\S+: \\d+(\\.\\d+)?(B|KiB) free of 256KiB$`).exec(err.message);
        assert.ok(m && [oci.layers[0].digest, oci.configDescriptor.digest].includes(m[1] as never), err.message);
        assert.match(err.hint ?? '', /img prune/);
        return true;
      });
      assert.deepEqual(listDir(path.join(state, 'ingest')), [], 'no partial download left');
      assert.equal(await new ContentStore(state).has(oci.layers[0].digest), false);
      assert.equal(await new ImageStore(state).get(name), null);
    } finally {
      execFileSync('umount', [state]);
    }
  });

  it('retries 5xx and 429 answers, honouring Retry-After', async () => {
    const state = freshState();
    proxy.failRequests('/manifests/oci', 503, 2);
    const res = await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
    assert.equal(res.target.digest, oci.manifest.digest);
    proxy.failRequests(`/blobs/${oci.layers[0].digest}`, 429, 1, '1');
    const t0 = Date.now();
    await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: freshState() });
    assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After: 1');
  });

  it('a huge manifest or error body is not read whole: the pull fails naming the manifest, the rest never downloaded', async () => {
    // The handler streams up to 1 GiB of whatever and counts what the client took.
    let sent = 0;
    const flood = (status: number, contentType: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
      sent = 0;
      res.writeHead(status, { 'content-type': contentType });
      const chunk = Buffer.alloc(1 << 20, 0x41);
      const more = (): void => {
        while (sent < 1 << 30 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => res.destroy());
      more();
    };
    try {
      proxy.intercept('GET', '/manifests/huge', flood(200, 'application/vnd.oci.image.manifest.v1+json'));
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:huge`, { stateDir: freshState() }), (err: Error & { hint?: string }) => {
        assert.ok(err instanceof ContentError, `${err.constructor.name}: ${err.message}`);
        assert.equal(err.message, `manifest huge from ${proxy.host}/library/busybox is larger than 4 MiB`);
        assert.match(err.hint ?? '', /not an image manifest/);
        return true;
      });
      assert.ok(sent < 64 << 20, `the client stopped reading early (${sent} bytes sent)`);
      proxy.intercept('GET', '/manifests/huge', flood(400, 'text/plain'));
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:huge`, { stateDir: freshState() }), (err: Error) => {
        assert.ok(err instanceof RegistryError);
        assert.match(err.message, new RegExp(`^manifest huge from ${proxy.host}/library/busybox: HTTP 400: A{100,}$`));
        assert.ok(err.message.length < 4200, `the error text is cut (${err.message.length} chars)`);
        return true;
      });
      assert.ok(sent < 64 << 20, `the error body was dropped early (${sent} bytes sent)`);
    } finally {
      proxy.intercept('GET', '/manifests/huge', () => undefined, 0);
    }
  });

  it('a manifest or index with a broken descriptor fails naming the image and the entry; nothing is stored', async () => {
    const doc = JSON.parse(oci.blobs.get(oci.manifest.digest)!.toString()) as Manifest;
    const serve = (body: unknown, mediaType: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
      const bytes = Buffer.from(JSON.stringify(body));
      res.writeHead(200, { 'content-type': mediaType, 'content-length': bytes.length });
      res.end(bytes);
    };
    const cases: [string, unknown, string, RegExp][] = [
      ['null-layer', { ...doc, layers: [doc.layers[0], null] }, MediaType.OciManifest, /^manifest sha256:[0-9a-f]{64} of image \S+:null-layer: layer 2 of 2 is null, not a descriptor$/],
      ['climbing-digest', { ...doc, layers: [{ ...doc.layers[0], digest: 'sha256:../../../etc/passwd' }] }, MediaType.OciManifest, /layer 1 of 1 has an invalid digest "sha256:\.\.\/\.\.\/\.\.\/etc\/passwd"$/],
      ['sha512', { ...doc, config: { ...doc.config, digest: `sha512:${'ab'.repeat(64)}` } }, MediaType.OciManifest, /its config has digest "sha512:abab.*", of an algorithm img does not support \(only sha256\)$/],
      ['no-size', { ...doc, layers: [{ mediaType: doc.layers[0].mediaType, digest: doc.layers[0].digest }] }, MediaType.OciManifest, /layer 1 of 1 has no size$/],
      ['index-null', { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [null] }, MediaType.OciIndex, /^index sha256:[0-9a-f]{64} of image \S+:index-null: entry 1 of its manifests is null, not a descriptor$/],
    ];
    try {
      for (const [tag, body, mediaType, want] of cases) {
        proxy.intercept('GET', `/manifests/${tag}`, serve(body, mediaType));
        const state = freshState();
        const name = `${proxy.host}/library/busybox:${tag}`;
        await assert.rejects(pullImage(name, { stateDir: state }), (err: Error & { hint?: string }) => {
          assert.ok(err instanceof ContentError, `${tag}: ${err.constructor.name}: ${err.message}`);
          assert.match(err.message, want, tag);
          assert.match(err.hint ?? '', /malformed in the registry.*nothing was stored/);
          return true;
        });
        assert.equal(await new ImageStore(state).get(name), null);
        assert.deepEqual(listDir(path.join(state, 'content', 'blobs', 'sha256')), [], `${tag}: nothing stored`);
      }
    } finally {
      for (const [tag] of cases) proxy.intercept('GET', `/manifests/${tag}`, () => undefined, 0);
    }
  });

  it('a registry that refuses HEAD on manifests (405) is asked with GET when an image is pulled again', async () => {
    const state = freshState();
    const name = `${proxy.host}/library/busybox:oci`;
    await pullImage(name, { stateDir: state });
    proxy.intercept('HEAD', '/manifests/oci', (_req, res) => {
      res.writeHead(405);
      res.end();
    });
    try {
      const before = proxy.requests.length;
      const again = await pullImage(name, { stateDir: state });
      assert.equal(again.upToDate, true);
      assert.deepEqual(
        proxy.requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`),
        ['HEAD /v2/library/busybox/manifests/oci 405', 'GET /v2/library/busybox/manifests/oci 200'],
      );
    } finally {
      proxy.intercept('HEAD', '/manifests/oci', () => undefined, 0);
    }
  });

  it('follows a blob redirect to another server; a redirect loop fails naming the blob and the loop', async () => {
    const layer = oci.layers[0].digest;
    // To the registry itself, on its own port (as a registry sends clients to its storage).
    proxy.intercept('GET', `/blobs/${layer}`, (req, res) => {
      res.writeHead(307, { location: `http://${reg.host}${req.url}` });
      res.end();
    });
    try {
      const state = freshState();
      await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
      assert.deepEqual(await new ContentStore(state).readBytes(layer), oci.blobs.get(layer));
      proxy.intercept('GET', `/blobs/${layer}`, (req, res) => {
        res.writeHead(302, { location: req.url });
        res.end();
      });
      const loop = freshState();
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: loop }), (err: Error & { hint?: string }) => {
        assert.ok(err instanceof RegistryError);
        assert.match(err.message, new RegExp(`^blob ${layer} from ${proxy.host}/library/busybox: more than 5 redirects, the last to http://${proxy.host}/v2/library/busybox/blobs/${layer}`));
        assert.match(err.hint ?? '', /redirects in a loop/);
        return true;
      });
      assert.deepEqual(listDir(path.join(loop, 'ingest')), []);
      assert.equal(await new ContentStore(loop).has(layer), false);
    } finally {
      proxy.intercept('GET', `/blobs/${layer}`, () => undefined, 0);
    }
  });

  it('a body cut short of its Content-Length: taken when every byte of the blob is there, else named with how far it got', async () => {
    const layer = oci.layers[0].digest;
    const bytes = oci.blobs.get(layer)!;
    // The whole blob, under a Content-Length 100 bytes larger, then the connection closes.
    proxy.intercept('GET', `/blobs/${layer}`, (_req, res) => {
      res.writeHead(200, { 'content-length': bytes.length + 100 });
      res.write(bytes, () => setTimeout(() => res.destroy(), 20));
    });
    try {
      const state = freshState();
      const res = await pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state });
      assert.equal(res.target.digest, oci.manifest.digest);
      assert.deepEqual(await new ContentStore(state).readBytes(layer), bytes);
    } finally {
      proxy.intercept('GET', `/blobs/${layer}`, () => undefined, 0);
    }
    // Cut at half of what is asked every time: resumed four times, then the message says how far it got.
    proxy.setFault(layer, 'truncate', Infinity);
    try {
      const state = freshState();
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: state }), (err: Error) => {
        assert.ok(err instanceof RegistryError, `${err.constructor.name}: ${err.message}`);
        assert.match(err.message, new RegExp(`^blob ${layer} from ${proxy.host}/library/busybox failed after 5 attempts: the connection closed after \\d+ of ${bytes.length} bytes$`));
        return true;
      });
      assert.deepEqual(listDir(path.join(state, 'ingest')), []);
      assert.equal(await new ContentStore(state).has(layer), false);
    } finally {
      proxy.setFault(undefined);
    }
  });

  it('names registry, repository and status in errors, with a hint', async () => {
    await assert.rejects(pullImage(`${reg.host}/library/busybox:nope`, { stateDir: freshState() }), (err: Error & { hint?: string }) => {
      assert.match(err.message, new RegExp(`manifest nope from ${reg.host}/library/busybox: HTTP 404`));
      assert.match(err.hint ?? '', /check the image name and tag/);
      assert.ok(err instanceof NotFoundError);
      return true;
    });
    proxy.failRequests('/manifests/oci', 500, 100);
    try {
      await assert.rejects(pullImage(`${proxy.host}/library/busybox:oci`, { stateDir: freshState() }), (err: Error) => {
        assert.match(err.message, /HTTP 500/);
        assert.ok(err instanceof RegistryError);
        assert.equal(err.status, 500);
        return true;
      });
    } finally {
      proxy.failRequests('', 500, 0);
    }
    // The transport's stalled-exchange codes become a TimeoutError (still a RegistryError)
    // naming what stalled, the limit, the attempts and the setting that raises it.
    const stalled = Object.assign(new Error('no answer within 1m'), { code: 'IMG_HTTP_HEADERS_TIMEOUT' });
    const err = connectionError({ registry: 'r.example', repository: 'a/b', what: 'manifest latest' }, 'https://r.example/v2/a/b/manifests/latest', stalled, false, 5);
    assert.ok(err instanceof TimeoutError && err instanceof RegistryError);
    assert.equal(err.code, 'IMG_ERR_TIMEOUT');
    assert.equal(err.message, 'manifest latest from r.example/a/b: no answer within 1m (5 attempts), at https://r.example/v2/a/b/manifests/latest');
    assert.match(err.hint ?? '', /stopped answering; retry later, or allow more time with IMG_REGISTRY_HEADERS_TIMEOUT=4m/);
    const refused = connectionError({ registry: 'r.example' }, 'https://r.example/v2/', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false, 5);
    assert.ok(!(refused instanceof TimeoutError));
    assert.equal(refused.message, 'cannot reach r.example (https://r.example/v2/): connect ECONNREFUSED');
  });
});
