// Inline caches between img and a real BuildKit: Debian's dockerd 20.10 (BuildKit v0.8,
// no buildx, so only `--build-arg BUILDKIT_INLINE_CACHE=1` and `--cache-from IMAGE`),
// started rootful on its own data root and socket under /tmp, talking to the test
// registry on 127.0.0.1 (insecure by default for loopback). Skipped without root or
// without /usr/sbin/dockerd and Debian's /usr/bin/docker client.
//
// What is asserted is what holds: each side reads the other's inline cache without a
// warning or an error (BuildKit's records, in a plain image and in a multi-platform
// index, are all found by img). Steps are not CACHED across the two: a hit needs equal
// cache keys, and img keys its own graph (lib/solver/keys.ts), BuildKit its LLB ops
// (the README says so). test/cache/interop.test.ts keeps a recorded BuildKit config so
// the reading is checked where no dockerd runs.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { INLINE_CACHE_FIELD } from '../../lib/cache/format';
import { loadRegistryCache } from '../../lib/cache/registry';
import { MediaType } from '../../lib/images/types';
import { makeBusyboxImage } from '../fixtures/images';
import { rawRequest, startRegistry, type Registry } from '../fixtures/registry';
import { cleanup, rootlessUser, runImgRootless, tempDir } from '../helpers/rootless';

const DOCKERD = '/usr/sbin/dockerd';
const DOCKER = '/usr/bin/docker'; // Debian's 20.10 client: builds with BuildKit without buildx
const skip =
  process.getuid?.() !== 0
    ? 'needs root to start a private dockerd'
    : !fs.existsSync(DOCKERD) || !fs.existsSync(DOCKER)
      ? `no dockerd here (${DOCKERD}, ${DOCKER}): the BuildKit differential cannot run; interop.test.ts covers img's side`
      : !rootlessUser()
        ? 'no unprivileged test user'
        : false;

describe('inline caches between img and BuildKit (dockerd 20.10)', { skip, timeout: 300_000 }, () => {
  let reg: Registry;
  let root: string;
  let dockerRoot: string;
  let daemon: ChildProcess | undefined;
  const sock = (): string => path.join(dockerRoot, 'docker.sock');
  const docker = (...args: string[]): string =>
    execFileSync(DOCKER, args, { encoding: 'utf8', env: { PATH: process.env.PATH, DOCKER_HOST: `unix://${sock()}`, DOCKER_BUILDKIT: '1', HOME: dockerRoot }, stdio: ['ignore', 'pipe', 'pipe'] });
  const dockerBuild = (ctx: string, ...args: string[]): string => {
    const r = spawnSync(DOCKER, ['build', '--progress', 'plain', '--network', 'host', ...args, ctx], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, DOCKER_HOST: `unix://${sock()}`, DOCKER_BUILDKIT: '1', HOME: dockerRoot },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  };
  const context = (name: string, text: string): string => {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), [
      `FROM ${reg.host}/library/busybox:latest`,
      'ENV FOO=bar',
      'WORKDIR /app',
      'RUN echo one > /app/one.txt',
      'COPY a.txt /app/a.txt',
      'COPY sub /app/sub',
      'RUN cat /app/a.txt > /app/two.txt',
      'RUN echo $FOO > /app/foo.txt',
      '',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, 'a.txt'), text);
    fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'sub\n');
    execFileSync('chmod', ['-R', 'a+rX', dir]);
    return dir;
  };
  const img = async (state: string, args: string[]) => {
    const res = await runImgRootless(['-s', path.join(root, state), 'build', '--progress', 'plain', ...args]);
    assert.equal(res.code, 0, res.stderr);
    return res.stderr;
  };

  before(async () => {
    reg = await startRegistry();
    await reg.seed('library/busybox', 'latest', await makeBusyboxImage({ mediaTypes: 'docker' }));
    root = tempDir('img-cache-bk-');
    dockerRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cache-dockerd-'));
    const log = fs.openSync(path.join(dockerRoot, 'dockerd.log'), 'a');
    daemon = spawn(DOCKERD, [
      '--data-root', path.join(dockerRoot, 'data'), '--exec-root', path.join(dockerRoot, 'exec'), '-H', `unix://${sock()}`,
      '--pidfile', path.join(dockerRoot, 'docker.pid'), '--bridge=none', '--iptables=false', '--ip-forward=false', '--ip-masq=false',
      '--storage-driver=vfs',
    ], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    for (let i = 0; ; i++) {
      if (daemon.exitCode !== null || i > 300) throw new Error(`dockerd did not start:\n${fs.readFileSync(path.join(dockerRoot, 'dockerd.log'), 'utf8').slice(-2000)}`);
      if (fs.existsSync(sock()) && spawnSync(DOCKER, ['info'], { env: { DOCKER_HOST: `unix://${sock()}` }, stdio: 'ignore' }).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    await reg?.stop();
    if (root) await cleanup(root);
    if (dockerRoot) fs.rmSync(dockerRoot, { recursive: true, force: true });
  });

  it("img reads BuildKit's inline cache, in an image and in a multi-platform index, without a warning", async () => {
    const ctx = context('bk', 'from buildkit\n');
    dockerBuild(ctx, '--build-arg', 'BUILDKIT_INLINE_CACHE=1', '-t', `${reg.host}/bk/app:1`);
    docker('push', `${reg.host}/bk/app:1`);

    // A multi-platform index over BuildKit's image and an arm64 image in the same repository.
    await reg.seed('bk/app', 'arm64', await makeBusyboxImage({ arch: 'arm64', mediaTypes: 'docker' }));
    const head = async (tag: string) => {
      const r = await rawRequest(reg.port, 'GET', `/v2/bk/app/manifests/${tag}`, { accept: MediaType.DockerManifest });
      return { digest: `sha256:${createHash('sha256').update(r.body).digest('hex')}`, size: Buffer.byteLength(r.body) };
    };
    const list = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifestList,
      manifests: [
        { mediaType: MediaType.DockerManifest, ...(await head('arm64')), platform: { architecture: 'arm64', os: 'linux' } },
        { mediaType: MediaType.DockerManifest, ...(await head('1')), platform: { architecture: 'amd64', os: 'linux' } },
      ],
    }));
    const put = await rawRequest(reg.port, 'PUT', '/v2/bk/app/manifests/multi', { 'content-type': MediaType.DockerManifestList }, list);
    assert.equal(put.status, 201, String(put.body));

    const state = path.join(root, 'probe');
    const plain = await loadRegistryCache(`${reg.host}/bk/app:1`, { stateDir: state });
    const multi = await loadRegistryCache(`${reg.host}/bk/app:multi`, { stateDir: state });
    assert.ok(plain.results.size >= 6, `BuildKit's records with a result: ${plain.results.size}`); // WORKDIR, 3 RUN, 2 COPY
    assert.deepEqual([...multi.results.keys()].sort(), [...plain.results.keys()].sort());

    for (const ref of ['bk/app:1', 'bk/app:multi']) {
      const stderr = await img(`s-${ref.replace(/\W/g, '-')}`, ['--cache-from', `${reg.host}/${ref}`, '-t', 'x/app', ctx]);
      assert.match(stderr, new RegExp(`importing cache manifest from ${reg.host}/${ref}`));
      assert.doesNotMatch(stderr, /cannot import cache|WARN/, stderr);
    }
  });

  it("BuildKit reads img's inline cache (OCI image, --push) without an error", async () => {
    const ctx = context('img', 'from img\n');
    const stderr = await img('s-img', ['--cache-to', 'type=inline', '--push', '-t', `${reg.host}/img/app:1`, ctx]);
    assert.match(stderr, /pushing|exporting/);
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.host}/img/app:1`], { encoding: 'utf8' })) as Record<string, string>;
    const records = JSON.parse(Buffer.from(config[INLINE_CACHE_FIELD], 'base64').toString()) as { layers?: unknown[] }[];
    assert.ok(records.filter((r) => r.layers?.length).length >= 6);

    const out = dockerBuild(ctx, '--cache-from', `${reg.host}/img/app:1`, '-t', 'x/img-app');
    assert.match(out, new RegExp(`importing cache manifest from ${reg.host}/img/app:1`));
    assert.doesNotMatch(out, /^#\d+ ERROR/m, out);
  });
});
