// Push against the real distribution registry, watched through a proxy that logs every
// request: new repository, blobs the registry has are skipped, cross-repository mounts,
// chunked uploads of large blobs, indexes; checked with skopeo reading what we pushed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import { MediaType, type Descriptor, type Index } from '../../lib/images/types';
import { pullImage } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { closeAgents } from '../../lib/registry/transport';
import { startFaultyProxy, type FaultyProxy } from '../fixtures/faulty-proxy';
import { makeBusyboxImage, makeIndex, sha256 } from '../fixtures/images';
import { rawRequest, startRegistry, type Registry } from '../fixtures/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-push-test-'));
let n = 0;
const freshState = (): string => fs.mkdtempSync(path.join(tmp, `state${n++}-`));

function skopeoRaw(ref: string): unknown {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' }));
}

describe('push (library)', () => {
  let reg: Registry;
  let proxy: FaultyProxy;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultyProxy({ targetPort: reg.port });
  });

  after(async () => {
    await closeAgents();
    await proxy?.stop();
    await reg?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pushes to a new repository, then skips every blob the registry already has', async () => {
    const state = freshState();
    const img = await makeBusyboxImage({ extraFiles: { 'etc/push': 'one' } });
    const name = `${proxy.host}/push/new:v1`;
    await img.writeToStore(state, name);
    const first = await pushImage(name, { stateDir: state });
    assert.deepEqual({ uploaded: first.uploaded, mounted: first.mounted, skipped: first.skipped }, { uploaded: 2, mounted: 0, skipped: 0 });
    assert.equal(first.digest, img.manifest.digest);
    // skopeo reads back exactly the manifest we stored.
    const raw = skopeoRaw(`${reg.host}/push/new:v1`) as { layers: Descriptor[] };
    assert.equal(raw.layers[0].digest, img.layers[0].digest);
    const manifest = await rawRequest(reg.port, 'GET', '/v2/push/new/manifests/v1', { accept: MediaType.OciManifest });
    assert.equal(manifest.headers['content-type'], MediaType.OciManifest);
    assert.equal(sha256(manifest.body), img.manifest.digest);

    const before = proxy.requests.length;
    const second = await pushImage(name, { stateDir: state });
    assert.deepEqual({ uploaded: second.uploaded, mounted: second.mounted, skipped: second.skipped }, { uploaded: 0, mounted: 0, skipped: 2 });
    const uploads = proxy.requests.slice(before).filter((r) => r.path.includes('/blobs/uploads/'));
    assert.deepEqual(uploads, [], 'no upload session was opened');
  });

  it('mounts blobs from the repository the image was pulled from instead of uploading', async () => {
    const img = await makeBusyboxImage({ extraFiles: { 'etc/push': 'mount' } });
    await reg.seed('origin/app', 'v1', img);
    const state = freshState();
    await pullImage(`${proxy.host}/origin/app:v1`, { stateDir: state });
    const copy = `${proxy.host}/copies/app:v1`;
    await new ImageStore(state).put(copy, img.manifest);
    const before = proxy.requests.length;
    const res = await pushImage(copy, { stateDir: state });
    assert.deepEqual({ uploaded: res.uploaded, mounted: res.mounted }, { uploaded: 0, mounted: 2 });
    const mounts = proxy.requests.slice(before).filter((r) => r.method === 'POST' && r.path.includes('mount=') && r.path.includes('from=origin%2Fapp'));
    assert.equal(mounts.length, 2);
    assert.ok(mounts.every((m) => m.status === 201));
    assert.equal((skopeoRaw(`${reg.host}/copies/app:v1`) as { config: Descriptor }).config.digest, img.configDescriptor.digest);
  });

  it('uploads a large blob in PATCH chunks with Content-Range and reads back the same bytes', async () => {
    const state = freshState();
    const store = new ContentStore(state);
    const layer = randomBytes(70 << 20); // > 32 MiB monolithic limit → two 64 MiB-max chunks
    const layerDesc = await store.writeBytes(layer);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDesc.digest] } }));
    const configDesc = await store.writeBytes(config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, ...configDesc },
        layers: [{ mediaType: MediaType.OciLayer, ...layerDesc }],
      }),
    );
    const manifestDesc = await store.writeBytes(manifest);
    const name = `${proxy.host}/big/blob:v1`;
    await new ImageStore(state).put(name, { mediaType: MediaType.OciManifest, ...manifestDesc });
    const before = proxy.requests.length;
    const res = await pushImage(name, { stateDir: state });
    assert.equal(res.uploaded, 2);
    const patches = proxy.requests.slice(before).filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, 2, 'two chunks');
    assert.ok(patches.every((p) => p.status === 202));
    const back = await pullImage(`${reg.host}/big/blob:v1`, { stateDir: freshState() });
    assert.equal(back.target.digest, manifestDesc.digest);
    const blob = await rawRequest(reg.port, 'GET', `/v2/big/blob/blobs/${layerDesc.digest}`);
    assert.equal(sha256(blob.body), layerDesc.digest);
  });

  it('pushes an index with all of its platform manifests', async () => {
    const state = freshState();
    const idx = await makeIndex([await makeBusyboxImage({ arch: 'amd64' }), await makeBusyboxImage({ arch: 'arm64' })]);
    const name = `${reg.host}/multi/pushed:latest`;
    await idx.writeToStore(state, name);
    const res = await pushImage(name, { stateDir: state });
    assert.equal(res.digest, idx.manifest.digest);
    const raw = skopeoRaw(`${reg.host}/multi/pushed:latest`) as Index;
    assert.equal(raw.mediaType, MediaType.OciIndex);
    for (const m of raw.manifests) {
      const r = await rawRequest(reg.port, 'HEAD', `/v2/multi/pushed/manifests/${m.digest}`, { accept: m.mediaType });
      assert.equal(r.status, 200, `${m.digest} pushed`);
    }
  });

  it('pushes the stored platform alone when a pulled index lacks the others', async () => {
    const amd = await makeBusyboxImage({ arch: 'amd64', extraFiles: { 'etc/p': 'partial' } });
    const arm = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/p': 'partial' } });
    await reg.seed('partial/src', 'v1', await makeIndex([amd, arm]));
    const state = freshState();
    await pullImage(`${reg.host}/partial/src:v1`, { stateDir: state, platform: { os: 'linux', architecture: 'amd64' } });
    const target = `${reg.host}/partial/dst:v1`;
    await new ImageStore(state).put(target, (await new ImageStore(state).get(`${reg.host}/partial/src:v1`))!.target);
    const res = await pushImage(target, { stateDir: state });
    assert.equal(res.digest, amd.manifest.digest);
  });

  it('uploads when a remembered mount source no longer has the blob, and restarts a failed upload', async () => {
    const state = freshState();
    const img = await makeBusyboxImage({ extraFiles: { 'etc/push': 'fallback' } });
    const name = `${proxy.host}/fallback/app:v1`;
    await img.writeToStore(state, name);
    // A stale hint: the registry answers the mount with 202 (an upload session) instead of 201.
    fs.mkdirSync(path.join(state, 'registry'), { recursive: true });
    fs.writeFileSync(
      path.join(state, 'registry', 'sources.json'),
      JSON.stringify({ [img.layers[0].digest]: [`${proxy.host}/gone/away`] }),
    );
    // And the first blob PUT fails with a 500: the upload starts over.
    proxy.failRequests('digest=sha256', 500, 1);
    const before = proxy.requests.length;
    const res = await pushImage(name, { stateDir: state });
    assert.deepEqual({ uploaded: res.uploaded, mounted: res.mounted }, { uploaded: 2, mounted: 0 });
    const seen = proxy.requests.slice(before);
    assert.ok(seen.some((r) => r.method === 'POST' && r.path.includes('from=gone%2Faway') && r.status === 202));
    assert.ok(seen.some((r) => r.method === 'PUT' && r.status === 500));
    assert.equal((skopeoRaw(`${reg.host}/fallback/app:v1`) as { layers: Descriptor[] }).layers[0].digest, img.layers[0].digest);
  });

  it('a registry that opens no upload session (202 without Location, or 200) fails naming the blob and the protocol; a refused upload keeps the registry\'s reason', async () => {
    const state = freshState();
    const img = await makeBusyboxImage({ extraFiles: { 'etc/push': 'no-session' } });
    const name = `${proxy.host}/nosession/app:v1`;
    await img.writeToStore(state, name);
    try {
      for (const [status, why] of [[202, 'HTTP 202 without a Location header'], [200, 'HTTP 200, not 202 Accepted with an upload Location']] as const) {
        // A repository per round: the other blob's POST of the round before may still arrive.
        const repo = `nosession${status}/app`;
        const roundName = `${proxy.host}/${repo}:v1`;
        await img.writeToStore(state, roundName);
        proxy.intercept('POST', `/${repo}/blobs/uploads/`, (_req, res) => {
          res.writeHead(status);
          res.end();
        });
        await assert.rejects(pushImage(roundName, { stateDir: state }), (err: Error & { hint?: string }) => {
          assert.match(err.message, new RegExp(`^upload of blob sha256:[0-9a-f]{64} to ${proxy.host}/${repo}: the registry answered ${why}$`));
          assert.match(err.hint ?? '', /does not speak the distribution upload protocol/);
          return true;
        });
        // Final at once: no retries of a session the registry will not open (one POST per blob).
        await new Promise((r) => setTimeout(r, 200)); // the other blob's POST, if it was on its way
        assert.ok(proxy.requests.filter((r) => r.method === 'POST' && r.path.includes(`/${repo}/`)).length <= 2);
        proxy.intercept('POST', `/${repo}/blobs/uploads/`, () => undefined, 0);
      }
      proxy.intercept('POST', '/nosession/app/blobs/uploads/', () => undefined, 0);
      proxy.intercept('PUT', '/nosession/app/blobs/uploads/', (_req, res) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}');
      });
      await assert.rejects(pushImage(name, { stateDir: state }), (err: Error & { hint?: string }) => {
        assert.match(err.message, /^blob sha256:[0-9a-f]{64} from \S+\/nosession\/app: HTTP 400: DIGEST_INVALID: provided digest did not match uploaded content$/);
        assert.match(err.hint ?? '', /the registry refused the request \(its reason is above\)/);
        return true;
      });
    } finally {
      proxy.intercept('POST', '/nosession/app/blobs/uploads/', () => undefined, 0);
      proxy.intercept('PUT', '/nosession/app/blobs/uploads/', () => undefined, 0);
    }
  });

  it('explains a missing local image', async () => {
    await assert.rejects(pushImage(`${reg.host}/nothing/here:v1`, { stateDir: freshState() }), (err: Error & { hint?: string }) => {
      assert.match(err.message, /image 127\.0\.0\.1:\d+\/nothing\/here:v1 not found/);
      assert.match(err.hint ?? '', /img tag|img build/);
      return true;
    });
  });
});
