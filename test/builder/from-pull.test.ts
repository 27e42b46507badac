// FROM a registry image not stored yet: the bottom layer is unpacked while it downloads
// (snapshot/unpack.ts AppliedWhilePulling), through the pull's retries: a download that
// fails its digest starts over in a new snapshot, one cut off midway resumes into the
// same one, and one that never arrives intact fails the build leaving no snapshot behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, rootlessUser, runImgRootless } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';
import { build, setup, skip, type Env } from './helpers';

// Every snapshot's kind, by backend dir: what the state holds after a build.
function snapshotKinds(state: string): string[] {
  const root = path.join(state, 'snapshots');
  const kinds: string[] = [];
  for (const backend of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    const dir = path.join(root, backend);
    if (!fs.statSync(dir).isDirectory() || backend === 'tmp') continue;
    for (const id of fs.readdirSync(dir)) {
      const meta = path.join(dir, id, 'meta.json');
      if (fs.existsSync(meta)) kinds.push(JSON.parse(fs.readFileSync(meta, 'utf8')).kind);
    }
  }
  return kinds;
}

test('img build (rootless): FROM unpacks while pulling; a corrupt download starts over, a cut one resumes, one never intact leaves no snapshot', { skip, timeout: 300_000 }, async (t) => {
  const { startRegistry } = await import('../fixtures/registry');
  const { startFaultyProxy } = await import('../fixtures/faulty-proxy');
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const base = await makeBusyboxImage({ extraFiles: { 'etc/version': 'one\n' } });
  await reg.seed('library/base', 'v1', base);
  const proxy = await startFaultyProxy({ targetPort: reg.port });
  t.after(() => proxy.stop());
  const e = await setup({ Dockerfile: `FROM ${proxy.host}/library/base:v1\nRUN cat /etc/version > /seen && ls /bin | wc -l > /bins\n` });
  t.after(() => cleanup(e.root));
  const u = rootlessUser()!;
  const layer = base.layers[0].digest;
  const freshState = (name: string): Env => {
    const state = path.join(e.root, `state-${name}`);
    fs.mkdirSync(state);
    if (process.getuid?.() === 0) execFileSync('chown', [`${u.uid}:${u.gid}`, state]);
    return { ...e, state };
  };

  for (const fault of ['corrupt', 'truncate'] as const) {
    const env = freshState(fault);
    const before = proxy.faults();
    proxy.setFault(layer, fault, 1);
    const out = path.join(e.root, `out-${fault}`);
    const r = await runImgRootless(['--debug', '-s', env.state, 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, e.ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.faults() - before, 1, `${fault}: one damaged download`);
    // Corrupt: the whole blob again, into a new snapshot; cut off: the rest, into the same one.
    const applying = r.stderr.split('\n').filter((l) => l.includes(`layer ${layer}: unpacking while it downloads`));
    assert.equal(applying.length, fault === 'corrupt' ? 2 : 1, r.stderr);
    assert.equal(fs.readFileSync(path.join(out, 'seen'), 'utf8'), 'one\n');
    assert.ok(Number(fs.readFileSync(path.join(out, 'bins'), 'utf8')) > 100, 'the whole layer is in the snapshot');
    const kinds = snapshotKinds(env.state);
    assert.ok(kinds.length >= 2, kinds.join(' '));
    assert.deepEqual(kinds.filter((k) => k !== 'committed'), [], `${fault}: the abandoned snapshot is gone`);
  }

  // The layer stored already (pulled with another config), not unpacked: nothing downloads, the
  // snapshot prepared for applying it while it downloads goes, the layer unpacks from the store.
  {
    const env = freshState('stored');
    const same = await makeBusyboxImage({ extraFiles: { 'etc/version': 'one\n' }, cmd: ['true'] });
    assert.equal(same.layers[0].digest, layer);
    await reg.seed('library/base', 'v2', same);
    const pulled = await runImgRootless(['-s', env.state, 'pull', `${proxy.host}/library/base:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const ctx = path.join(e.root, 'ctx-stored');
    fs.mkdirSync(ctx, { mode: 0o755 });
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${proxy.host}/library/base:v2\nRUN cat /etc/version > /seen\n`);
    const out = path.join(e.root, 'out-stored');
    const r = await runImgRootless(['--debug', '-s', env.state, 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(out, 'seen'), 'utf8'), 'one\n');
    assert.ok(!r.stderr.includes('unpacking while it downloads'), r.stderr);
    const kinds = snapshotKinds(env.state);
    assert.ok(kinds.length >= 2, kinds.join(' '));
    assert.deepEqual(kinds.filter((k) => k !== 'committed'), [], 'the snapshot prepared for the download is gone');
  }

  const env = freshState('never');
  proxy.setFault(layer, 'corrupt', Infinity);
  try {
    const bad = await build(env, [e.ctx]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, new RegExp(`blob ${layer} from ${proxy.host}/library/base failed after \\d+ attempts: digest mismatch`));
  } finally {
    proxy.setFault(undefined);
  }
  assert.deepEqual(snapshotKinds(env.state), [], 'no snapshot left by the attempts');
  assert.equal(fs.existsSync(path.join(env.state, 'content', 'blobs', 'sha256', layer.slice(7))), false, 'the layer is not stored');
});
