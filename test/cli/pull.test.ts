// `img pull` as a user runs it, against the real registry.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runImg } from '../helpers/cli';
import { startFaultyProxy, type FaultyProxy } from '../fixtures/faulty-proxy';
import { makeBusyboxImage, makeIndex, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cli-pull-'));
let n = 0;
const freshState = (): string => fs.mkdtempSync(path.join(tmp, `state${n++}-`));
const blobsDir = (state: string): string => path.join(state, 'content', 'blobs', 'sha256');

describe('img pull', () => {
  let reg: Registry;
  let proxy: FaultyProxy;
  let img: BuiltImage;
  let amd64: BuiltImage;
  let arm64: BuiltImage;
  let index: BuiltImage;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultyProxy({ targetPort: reg.port });
    img = await makeBusyboxImage({ mediaTypes: 'docker', extraFiles: { 'etc/cli': 'pull' } });
    amd64 = await makeBusyboxImage({ arch: 'amd64', extraFiles: { 'etc/cli': 'amd64' } });
    arm64 = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/cli': 'arm64' } });
    index = await makeIndex([amd64, arm64], { mediaTypes: 'docker' });
    await reg.seed('library/busybox', 'latest', img);
    await reg.seed('multi/busybox', 'latest', index);
  });

  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('prints progress, the digest and the size, and the image is listed', async () => {
    const state = freshState();
    const res = await runImg(['--state', state, 'pull', `${reg.host}/library/busybox`]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Pulling ${reg.host}/library/busybox:latest...`);
    assert.ok(lines.some((l) => /^[0-9a-f]{12}: Pull complete \(\d+(\.\d+)?MiB\)$/.test(l) && l.startsWith(img.layers[0].digest.slice(7, 19))), res.stdout);
    assert.equal(lines.at(-2), `Digest: ${img.manifest.digest}`);
    assert.match(lines.at(-1)!, /^Size: \d+(\.\d+)?MiB$/);
    const ls = await runImg(['--state', state, 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`${reg.host.replace(/\./g, '\\.')}/library/busybox:latest\\s.*${img.manifest.digest}`));
  });

  it('is a no-op for an image already pulled', async () => {
    const state = freshState();
    assert.equal((await runImg(['--state', state, 'pull', `${reg.host}/library/busybox`])).code, 0);
    const mtimes = fs.readdirSync(blobsDir(state)).map((f) => fs.statSync(path.join(blobsDir(state), f)).mtimeMs);
    const again = await runImg(['--state', state, 'pull', `${reg.host}/library/busybox`]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Image is up to date for /);
    assert.doesNotMatch(again.stdout, /Pull complete/);
    assert.deepEqual(fs.readdirSync(blobsDir(state)).map((f) => fs.statSync(path.join(blobsDir(state), f)).mtimeMs), mtimes);
  });

  it('pulls the requested platform of a manifest list with --platform, and by digest', async () => {
    const state = freshState();
    const res = await runImg(['--state', state, 'pull', '--platform', 'linux/arm64', `${reg.host}/multi/busybox`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`Digest: ${index.manifest.digest}`));
    assert.ok(fs.existsSync(path.join(blobsDir(state), arm64.configDescriptor.digest.slice(7))));
    assert.ok(!fs.existsSync(path.join(blobsDir(state), amd64.configDescriptor.digest.slice(7))));

    const byDigest = await runImg(['--state', state, 'pull', `${reg.host}/library/busybox@${img.manifest.digest}`]);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.match(byDigest.stdout, new RegExp(`^Pulling ${reg.host}/library/busybox@${img.manifest.digest}\\.\\.\\.`));
    const ls = await runImg(['--state', state, 'ls']);
    assert.match(ls.stdout, new RegExp(`library/busybox@${img.manifest.digest}`));
  });

  it('explains bad input: unknown tag, bad platform', async () => {
    const missing = await runImg(['--state', freshState(), 'pull', `${reg.host}/library/busybox:nope`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, new RegExp(`Error: manifest nope from ${reg.host}/library/busybox: HTTP 404.* — check the image name and tag`));
    const badPlatform = await runImg(['--state', freshState(), 'pull', '--platform', 'linux/arm/v7/x', `${reg.host}/library/busybox`]);
    assert.notEqual(badPlatform.code, 0);
    assert.match(badPlatform.stderr, /Error: invalid platform "linux\/arm\/v7\/x": too many "\/"-separated parts — use OS\/ARCH\[\/VARIANT\]/);
  });

  it('fails on a blob that is always corrupted, storing nothing', async () => {
    const state = freshState();
    proxy.setFault(img.layers[0].digest, 'corrupt', Infinity);
    try {
      const res = await runImg(['--state', state, 'pull', `${proxy.host}/library/busybox`]);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, new RegExp(`Error: blob ${img.layers[0].digest} from ${proxy.host}/library/busybox failed after 5 attempts: digest mismatch`));
    } finally {
      proxy.setFault(undefined);
    }
    assert.ok(!fs.existsSync(path.join(blobsDir(state), img.layers[0].digest.slice(7))));
    assert.deepEqual(fs.existsSync(path.join(state, 'ingest')) ? fs.readdirSync(path.join(state, 'ingest')) : [], []);
    const ls = await runImg(['--state', state, 'ls']);
    assert.doesNotMatch(ls.stdout, /busybox/);
  });

  it('a stalled registry: each stall shows as a retry, then a TimeoutError naming registry, repository and blob; nothing stored', async () => {
    const env = { IMG_REGISTRY_TIMEOUT: '500ms' }; // short limits keep the test fast
    const layer = img.layers[0].digest;
    const row = layer.slice(7, 19);
    try {
      // Held before the headers once: one retry, then the pull completes.
      proxy.setFault(layer, 'stall-headers', 1);
      const once = await runImg(['--state', freshState(), 'pull', `${proxy.host}/library/busybox`], { env });
      assert.equal(once.code, 0, once.stderr);
      assert.ok(once.stdout.includes(`${row}: Retrying (attempt 2): no answer within 500ms\n`), once.stdout);
      assert.match(once.stdout, new RegExp(`${row}: Pull complete`));

      // The body stops halfway on every attempt (resumed ones too): five attempts, then the error.
      const state = freshState();
      proxy.setFault(layer, 'stall-body', Infinity);
      const body = await runImg(['--state', state, '--debug', 'pull', `${proxy.host}/library/busybox`], { env });
      assert.equal(body.code, 1, body.stderr);
      for (const n of [2, 3, 4, 5]) assert.ok(body.stdout.includes(`${row}: Retrying (attempt ${n}): no data for 500ms\n`), body.stdout);
      assert.ok(
        body.stderr.includes(
          `\nError: blob ${layer} from ${proxy.host}/library/busybox failed after 5 attempts: no data for 500ms — the registry (or a proxy in between) stopped answering; retry later, or allow more time with IMG_REGISTRY_BODY_TIMEOUT=2s (IMG_REGISTRY_TIMEOUT sets all three limits); nothing was stored\ncode: IMG_ERR_TIMEOUT\n`,
        ),
        body.stderr,
      );
      assert.match(body.stderr, /resuming at byte \d+/, 'each attempt resumed where the last stopped');
      assert.ok(!fs.existsSync(path.join(blobsDir(state), layer.slice(7))));
      assert.deepEqual(fs.readdirSync(path.join(state, 'ingest')), [], 'no partial download left');
      assert.doesNotMatch((await runImg(['--state', state, 'ls'])).stdout, /busybox/);
    } finally {
      proxy.setFault(undefined);
    }
    const bad = await runImg(['--state', freshState(), 'pull', `${proxy.host}/library/busybox`], { env: { IMG_REGISTRY_TIMEOUT: 'soon' } });
    assert.match(bad.stderr, /^Error: IMG_REGISTRY_TIMEOUT=soon is not a duration — set it like 30s, 2m or 500ms \(0: no limit\)$/m);
  });

  it('two concurrent pulls into one state dir both succeed and leave a consistent store', async () => {
    const state = freshState();
    const [a, b] = await Promise.all([
      runImg(['--state', state, 'pull', `${reg.host}/library/busybox`]),
      runImg(['--state', state, 'pull', `${reg.host}/multi/busybox`]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const ls = await runImg(['--state', state, 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`library/busybox:latest\\s.*${img.manifest.digest}`));
    assert.match(ls.stdout, new RegExp(`multi/busybox:latest\\s.*${index.manifest.digest}`));
    for (const f of fs.readdirSync(blobsDir(state))) {
      const digest = createHash('sha256').update(fs.readFileSync(path.join(blobsDir(state), f))).digest('hex');
      assert.equal(digest, f, 'every stored blob matches its name');
    }
    // And the same image twice at once into another empty state dir.
    const shared = freshState();
    const [c, d] = await Promise.all([
      runImg(['--state', shared, 'pull', `${reg.host}/library/busybox`]),
      runImg(['--state', shared, 'pull', `${reg.host}/library/busybox`]),
    ]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(fs.readdirSync(blobsDir(shared)).sort(), [...img.blobs.keys()].map((k) => k.slice(7)).sort());
    assert.deepEqual(fs.readdirSync(path.join(shared, 'ingest')), []);
  });
});
