// RUN --mount=type=ssh: the agent socket given with --ssh is mounted and SSH_AUTH_SOCK points at it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip } from './helpers';

test('img build (rootless): --ssh default=SOCKET reaches RUN --mount=type=ssh', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({
    Dockerfile: 'FROM busybox\nRUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /ssh-ok\n',
  });
  t.after(() => cleanup(e.root));
  const sock = path.join(e.root, 'agent.sock');
  const server = net.createServer((c) => c.end());
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  fs.chmodSync(sock, 0o666);
  const out = path.join(e.root, 'out');
  const r = await build(e, ['--ssh', `default=${sock}`, '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'ssh-ok'), 'utf8'), '/run/buildkit/ssh_agent.0\n');
  // Without --ssh a required ssh mount is an error naming the flag.
  const bad = await build(e, ['-'], { input: 'FROM busybox\nRUN --mount=type=ssh,required=true true\n' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no SSH key "default" forwarded from the client/);
});

test('RUN --mount=type=ssh: the socket has the mount\'s uid, gid and mode (0600 root by default)', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=ssh stat -c "%u %g %a" "$SSH_AUTH_SOCK" > /default-sock',
      // BuildKit's testSSHSocketParams: c1e1 is a socket of mode 0741.
      'RUN --mount=type=ssh,mode=741,uid=100,gid=102 stat -c "%u %g %f" "$SSH_AUTH_SOCK" > /param-sock',
      'RUN mkdir -m 0777 /out',
      'USER 1000:1000',
      'RUN --mount=type=ssh,uid=1000,target=/run/agent test -r /run/agent && test -w /run/agent && id -u > /out/agent-user',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const sock = path.join(e.root, 'agent.sock');
  const server = net.createServer((c) => c.end());
  await new Promise<void>((r) => server.listen(sock, r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  fs.chmodSync(sock, 0o600);
  if (process.getuid?.() === 0) fs.chownSync(sock, fs.statSync(e.root).uid, fs.statSync(e.root).gid);
  const out = path.join(e.root, 'out');
  const r = await build(e, ['--ssh', `default=${sock}`, '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'default-sock'), 'utf8'), '0 0 600\n');
  assert.equal(fs.readFileSync(path.join(out, 'param-sock'), 'utf8'), '100 102 c1e1\n');
  // USER 1000 may use a socket given uid=1000 (the agent's own socket is 0600 and not theirs).
  assert.equal(fs.readFileSync(path.join(out, 'out', 'agent-user'), 'utf8'), '1000\n');
});
