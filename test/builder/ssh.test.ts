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
  assert.match(bad.stderr, /ssh agent "default" is required but was not provided/);
});
