// The RUN --mount manager on its own (no container): what it hands runc for an ssh mount.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { ExecVertex } from '../../lib/graph/types';
import { RunMounts } from '../../lib/solver/mounts';
import type { Snapshotter } from '../../lib/snapshot/types';

function vertex(mounts: ExecVertex['mounts']): ExecVertex {
  return { id: 'v', kind: 'exec', name: 'RUN', inputs: [], rootfs: -1, args: ['true'], env: [], cwd: '/', user: '', network: 'default', security: 'sandbox', mounts } as ExecVertex;
}

test('ssh mount: a socket of its own with the mount\'s mode forwards to the agent, and is gone after release', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-runmounts-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const agentPath = path.join(dir, 'agent.sock');
  const agent = net.createServer((c) => c.end('agent says hi'));
  await new Promise<void>((r) => agent.listen(agentPath, r));
  t.after(() => new Promise<void>((r) => agent.close(() => r())));

  const rm = await RunMounts.forVertex(
    { stateDir: dir, sn: {} as Snapshotter, cacheMountDir: (id) => path.join(dir, id), ssh: [{ id: 'default', paths: [agentPath] }] },
    vertex([{ type: 'ssh', target: '', sshId: 'default', mode: 0o640, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }]),
    [],
  );
  assert.deepEqual(rm.env, ['SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0']);
  const m = rm.mounts[0];
  assert.equal(m.type, 'bind');
  assert.equal(m.target, '/run/buildkit/ssh_agent.0');
  const src = (m as { source: string }).source;
  assert.notEqual(src, agentPath);
  const st = fs.statSync(src);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o640);
  const reply = await new Promise<string>((resolve, reject) => {
    let got = '';
    net.connect(src).on('data', (d) => (got += d)).on('end', () => resolve(got)).on('error', reject);
  });
  assert.equal(reply, 'agent says hi');
  await rm.release();
  assert.equal(fs.existsSync(src), false);
});

test('missing secret and ssh agent: BuildKit\'s words when the mount is required, nothing when optional', async () => {
  const src = { stateDir: os.tmpdir(), sn: {} as Snapshotter, cacheMountDir: (id: string) => id, secrets: [], ssh: [] };
  await assert.rejects(RunMounts.forVertex(src, vertex([{ type: 'secret', target: '', secretId: 'mysecret', required: true }]), []), /secret mysecret: not found/);
  await assert.rejects(RunMounts.forVertex(src, vertex([{ type: 'ssh', target: '', sshId: 'default', required: true }]), []), /no SSH key "default" forwarded from the client/);
  const none = await RunMounts.forVertex(src, vertex([{ type: 'ssh', target: '', sshId: 'default' }, { type: 'secret', target: '', secretId: 'x' }]), []);
  // No mount; SSH_AUTH_SOCK is set all the same (BuildKit's llb puts it in the step's environment).
  assert.deepEqual([none.mounts, none.env], [[], ['SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0']]);
});

test('SSH_AUTH_SOCK: the first ssh mount\'s target, unless the step\'s environment has one', async () => {
  const src = { stateDir: os.tmpdir(), sn: {} as Snapshotter, cacheMountDir: (id: string) => id, ssh: [] };
  const two: ExecVertex['mounts'] = [
    { type: 'ssh', target: '/run/buildkit/ssh_agent.0', sshId: 'a' },
    { type: 'ssh', target: '/run/buildkit/ssh_agent.1', sshId: 'b' },
  ];
  assert.deepEqual((await RunMounts.forVertex(src, vertex(two), [])).env, ['SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0']);
  const mine = { ...vertex(two), env: ['SSH_AUTH_SOCK=/mine'] };
  assert.deepEqual((await RunMounts.forVertex(src, mine, [])).env, []);
});

test('cache mount directories: one per id, and apart for a from= seed or for uid/gid/mode', async () => {
  const { cacheDirKey } = await import('../../lib/solver/mounts');
  const plain = cacheDirKey({ type: 'cache', target: '/c', cacheId: 'x' }, null);
  assert.equal(plain, 'x');
  assert.equal(cacheDirKey({ type: 'cache', target: '/c' }, null), '/c');
  const owned = cacheDirKey({ type: 'cache', target: '/c', cacheId: 'x', uid: 1000 }, null);
  assert.notEqual(owned, plain);
  assert.notEqual(cacheDirKey({ type: 'cache', target: '/c', cacheId: 'x', mode: 0o700 }, null), owned);
  assert.notEqual(cacheDirKey({ type: 'cache', target: '/c', cacheId: 'x', source: '/a' }, 'snap1'), cacheDirKey({ type: 'cache', target: '/c', cacheId: 'x', source: '/a' }, 'snap2'));
});

test('sharing=private: a cache in use by another step gives this one another instance; a free one is reused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-runmounts-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = { stateDir: dir, sn: {} as Snapshotter, cacheMountDir: (id: string) => path.join(dir, 'mounts', Buffer.from(id).toString('hex')) };
  const v = vertex([{ type: 'cache', target: '/c', cacheId: 'p', sharing: 'private' }]);
  const first = await RunMounts.forVertex(src, v, []);
  const second = await RunMounts.forVertex(src, v, []);
  const a = (first.mounts[0] as { source: string }).source;
  const b = (second.mounts[0] as { source: string }).source;
  assert.notEqual(a, b);
  await first.release();
  const third = await RunMounts.forVertex(src, v, []);
  assert.equal((third.mounts[0] as { source: string }).source, a);
  await second.release();
  await third.release();
});
