// The namespace entry degrades instead of failing (issue 9), seen by a user
// of `img build` and `img version` as the unprivileged test user: full
// subordinate ranges; a newuidmap the kernel refuses (a copy without its
// setuid bit, refused exactly as in a container that may not map ids); no
// ranges at all. Each builds a small image and says which mapping it used
// and why; the degraded ones warn once. Signals reach a build through
// img-launch and its exit status comes back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { imgArgv, LAUNCHER } from '../helpers/cli';
import { takeBackDeferredEnv } from '../../lib/cli/launch';
import { cleanup, rootlessUser, runImgRootless, spawnAsUser } from '../helpers/rootless';
import { build, descendants, setup, skip, storedConfig, type Env } from '../builder/helpers';

const noLauncher = !fs.existsSync(LAUNCHER) && `img-launch is not built (${LAUNCHER}): run npm run build:addon`;
const DOCKERFILE = 'FROM busybox\nRUN echo hi > /hi\nCOPY app.txt /app.txt\n';
const DEGRADED = /^WARN user namespace maps only your own ids \(uid and gid as 0\): (.*)\. Other owners in images and COPY --chown are kept in the layers img writes, but RUN steps see those files as root's, and a RUN chown or USER to other ids fails\. (.*)$/gm;

// The owners (uid:gid) of `file` in the image's top layer.
function topLayerOwner(e: Env, name: string, file: string): Promise<string> {
  return layerOwner(e, name, -1, file);
}

// The owners (uid:gid) of `file` in the image's layer `at` (negative: from the top).
async function layerOwner(e: Env, name: string, at: number, file: string): Promise<string> {
  const { manifest } = await storedConfig(e, name);
  const top = manifest.layers.at(at)!.digest.slice('sha256:'.length);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', path.join(e.state, 'content', 'blobs', 'sha256', top)], { encoding: 'utf8' });
  const line = listing.split('\n').find((l) => l.endsWith(` ${file}`));
  assert.ok(line, `${file} in the top layer:\n${listing}`);
  return line.split(/\s+/)[1].replace('/', ':');
}

describe('the namespace entry degrades instead of failing', { skip: skip || noLauncher }, () => {
  let e: Env;
  let refusedBin: string;
  let emptySubIds: string;
  before(async () => {
    e = await setup({
      Dockerfile: DOCKERFILE,
      'app.txt': 'v1\n',
      'chown/Dockerfile': 'FROM busybox\nRUN echo hi > /hi && chown 1000:1000 /hi\n',
      'user/Dockerfile': 'FROM busybox\nUSER 1000\nRUN id\n',
      'kept.Dockerfile': 'FROM entry:chown\nRUN chmod 600 /hi && echo "owner seen by RUN: $(stat -c %u:%g /hi) $(stat -c %a /hi)"\nCOPY --chown=5:7 app.txt /app2.txt\n',
    });
    refusedBin = path.join(e.root, 'refused-bin');
    fs.mkdirSync(refusedBin);
    for (const h of ['newuidmap', 'newgidmap']) {
      fs.copyFileSync(`/usr/bin/${h}`, path.join(refusedBin, h));
      fs.chmodSync(path.join(refusedBin, h), 0o755); // no setuid bit
    }
    emptySubIds = path.join(e.root, 'no-subids');
    fs.writeFileSync(emptySubIds, '');
  });
  after(() => cleanup(e.root));

  test('full subordinate ranges: no warning, other owners work', async () => {
    const r = await build(e, ['--debug', '-t', 'entry:full', e.ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /^WARN /m);
    assert.match(r.stderr, /^DEBU user namespace: entered by img-launch in [\d.]+ ms; mapping subids: the subordinate ranges of \S+ in \/etc\/subuid and \/etc\/subgid, written by newuidmap\/newgidmap$/m);
    assert.match(r.stderr, /^DEBU \/proc for RUN steps: fresh \(/m);
    assert.match(r.stderr, /^DEBU start-up: img-launch [\d.]+ ms, Node [\d.]+ ms, modules [\d.]+ ms, work [\d.]+ ms$/m);
    const chown = await build(e, ['-t', 'entry:chown', path.join(e.ctx, 'chown')]);
    assert.equal(chown.code, 0, chown.stderr);
    assert.equal(await topLayerOwner(e, 'docker.io/library/entry:chown', 'hi'), '1000:1000');

    const v = await runImgRootless(['-s', e.state, 'version']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^ namespace {3}: entered by img-launch in [\d.]+ ms$/m);
    assert.match(v.stdout, /^ id mapping {2}: subids \(the subordinate ranges of /m);
    assert.match(v.stdout, /^ \/proc {7}: fresh \(/m);
    assert.match(v.stdout, /^ backend {5}: (overlayfs|fuse-overlayfs|native) \(auto/m);
  });

  for (const variant of ['refused newuidmap', 'no subordinate ranges'] as const) {
    test(`${variant}: a single-id mapping with one warning, and the build still works`, async () => {
      const env =
        variant === 'refused newuidmap'
          ? { PATH: `${refusedBin}:${process.env.PATH}` }
          : { IMG_SUBUID_FILE: emptySubIds, IMG_SUBGID_FILE: emptySubIds };
      const why =
        variant === 'refused newuidmap'
          ? `${refusedBin}/newuidmap failed (exit 1): newuidmap: write to uid_map failed: Operation not permitted`
          : `no subordinate ids for ${rootlessUser()!.name} in ${emptySubIds} and ${emptySubIds}`;
      const tag = `entry:${variant.split(' ')[0]}`;
      const r = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '--debug', '--no-cache', '-t', tag, e.ctx], { env });
      assert.equal(r.code, 0, r.stderr);
      const warnings = [...r.stderr.matchAll(DEGRADED)];
      assert.equal(warnings.length, 1, r.stderr);
      assert.equal(r.stderr.match(/^WARN /gm)?.length, 1, r.stderr);
      assert.equal(warnings[0][1], why);
      assert.match(warnings[0][2], variant === 'refused newuidmap' ? /must be setuid root or carry the cap_setuid\/cap_setgid file capabilities/ : /usermod --add-subuids/);
      assert.ok(r.stderr.includes(`DEBU user namespace: entered by img-launch`) && r.stderr.includes(`mapping single: ${why}\n`), r.stderr);
      const { manifest } = await storedConfig(e, `docker.io/library/${tag}`);
      assert.equal(manifest.layers.length, 3);

      const v = await runImgRootless(['-s', e.state, 'version'], { env });
      assert.equal(v.code, 0, v.stderr);
      assert.ok(v.stdout.includes(` id mapping  : single (${why})\n`), v.stdout);
      assert.doesNotMatch(v.stderr, /WARN/);
      // What the warning says: a RUN cannot give files away…
      const chown = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '--no-cache', path.join(e.ctx, 'chown')], { env });
      assert.notEqual(chown.code, 0, chown.stderr);
      assert.match(chown.stderr, /chown.*Invalid argument/);
      // …nor run as another user: said before runc's "unable to setup user: invalid argument".
      const asUser = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '--no-cache', path.join(e.ctx, 'user')], { env });
      assert.notEqual(asUser.code, 0, asUser.stderr);
      assert.match(asUser.stderr, /^ERROR: failed to solve: cannot run as user 1000 \(uid 1000, gid 0\): this user namespace does not map those ids — img maps only ids it has subordinate ranges for/m);
      // …but owners the namespace cannot hold survive: the base image's /hi (1000:1000, built
      // by the full-range test) changed by a RUN, and COPY --chown to ids outside the map.
      const kept = await runImgRootless(['-s', e.state, 'build', '--progress', 'plain', '--no-cache', '-t', `${tag}-kept`, '-f', path.join(e.ctx, 'kept.Dockerfile'), e.ctx], { env });
      assert.equal(kept.code, 0, kept.stderr);
      assert.match(kept.stderr, /^#\d+ [\d.]+ owner seen by RUN: 0:0 600$/m, 'inside the step the file is root\'s');
      const name = `docker.io/library/${tag}-kept`;
      assert.equal(await layerOwner(e, name, -2, 'hi'), '1000:1000');
      assert.equal(await layerOwner(e, name, -1, 'app2.txt'), '5:7');
    });
  }

  test('without HOME (cron, some batch systems), a build and `img ls` share the state dir of the user\'s passwd home, not root\'s inside the namespace', async () => {
    const dir = path.join(e.root, 'nohome');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL home=none\n');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
    const tag = `nohome-${process.pid}:latest`;
    const env = { HOME: '' };
    const b = await runImgRootless(['build', '-q', '-t', tag, dir], { env });
    assert.equal(b.code, 0, b.stderr);
    try {
      const ls = await runImgRootless(['ls'], { env });
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, new RegExp(`^${tag}\\s`, 'm'));
    } finally {
      await runImgRootless(['rmi', tag], { env });
    }
  });

  test('SIGTERM to img-launch (as timeout and Kubernetes send it) stops a build; its status comes back', async () => {
    const dir = path.join(e.root, 'sleeper');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo start-sleep && sleep 67\n');
    const u = rootlessUser()!;
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
    const { child, done } = spawnAsUser(imgArgv(['-s', e.state, 'build', '--progress', 'plain', '--no-cache', dir]));
    child.stdout!.resume();
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const started = new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (/ start-sleep/.test(err)) {
          clearInterval(t);
          resolve();
        }
      }, 50);
      child.on('close', () => {
        clearInterval(t);
        reject(new Error(`build ended before its RUN step:\n${err}`));
      });
    });
    await started;
    const launcher = [child.pid!, ...descendants(child.pid!)].find((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'img-launch');
    assert.ok(launcher, 'img-launch runs the build');
    const tree = descendants(launcher);
    process.kill(launcher, 'SIGTERM');
    assert.equal(await done, 143, err);
    const alive = () => tree.filter((pid) => fs.existsSync(`/proc/${pid}`));
    for (let i = 0; i < 50 && alive().length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(alive(), [], 'every process of the build is gone');
  });
});

// Node 20 parses NODE_EXTRA_CA_CERTS as it starts (~40 ms); img-launch moves it aside for img's
// own program only, and img puts it back before anything else runs.
test('img-launch defers NODE_EXTRA_CA_CERTS for img, and img takes it back', { skip: noLauncher }, () => {
  const env = { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: '/etc/my-ca.pem' };
  const asImg = execFileSync(LAUNCHER, ['img', '3', '/bin/sh', '-c', 'env', 'ls'], { env, encoding: 'utf8' });
  assert.match(asImg, /^IMG_DEFERRED_EXTRA_CA_CERTS=\/etc\/my-ca\.pem$/m);
  assert.doesNotMatch(asImg, /^NODE_EXTRA_CA_CERTS=/m);
  const other = execFileSync(LAUNCHER, ['enter', '/usr/bin/env'], { env, encoding: 'utf8' });
  assert.match(other, /^NODE_EXTRA_CA_CERTS=\/etc\/my-ca\.pem$/m, 'another program keeps it');
  const taken = { IMG_DEFERRED_EXTRA_CA_CERTS: '/etc/my-ca.pem' } as NodeJS.ProcessEnv;
  takeBackDeferredEnv(taken);
  assert.deepEqual(taken, { NODE_EXTRA_CA_CERTS: '/etc/my-ca.pem' });
});
