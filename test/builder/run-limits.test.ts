// What RUN steps get from `img build --shm-size`, `--ulimit` and RUN --security=insecure
// (with --allow security.insecure): seen from inside the step, through files it writes
// into the image. Real runc in the user namespace, as the unprivileged test user.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { build, setup, skip, stepStates, steps } from './helpers';
import { cleanup } from '../helpers/rootless';

// The files a build wrote with -o type=local.
async function localOut(e: { root: string }, name: string): Promise<string> {
  return fs.readFileSync(path.join(e.root, 'out', name), 'utf8');
}

test('--shm-size sizes the RUN container\'s /dev/shm (64m by default, as BuildKit)', { skip }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN df -k /dev/shm | tail -1 > /shm && grep " /dev/shm " /proc/mounts > /shm-mount\n' });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const d = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await localOut(e, 'shm')).trim().split(/\s+/)[1], '65536');
  const r = await build(e, ['--shm-size', '128m', '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await localOut(e, 'shm')).trim().split(/\s+/)[1], '131072');
  assert.match(await localOut(e, 'shm-mount'), /size=131072k/);
  // The size is part of the step's cache key (BuildKit keeps it in the exec op): it ran again.
  assert.deepEqual(steps(stepStates(r.stderr)).find(([n]) => n.includes('RUN'))?.[1], 'DONE');
  const bad = await build(e, ['--shm-size', 'lots', e.ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid argument "lots" for "--shm-size" flag/);
});

test('--ulimit sets the RUN process\'s rlimits; a hard limit above the user\'s is refused naming it', { skip }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN ulimit -Sn > /nofile-soft && ulimit -Hn > /nofile-hard && ulimit -Sc > /core\n' });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const r = await build(e, ['--ulimit', 'nofile=1024:2048', '--ulimit', 'core=0:0', '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await localOut(e, 'nofile-soft')).trim(), '1024');
  assert.equal((await localOut(e, 'nofile-hard')).trim(), '2048');
  assert.equal((await localOut(e, 'core')).trim(), '0');

  const hard = /Max open files\s+\S+\s+(\S+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1];
  if (hard !== 'unlimited') {
    const over = Number(hard) + 1;
    const bad = await build(e, ['--ulimit', `nofile=1024:${over}`, e.ctx]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`--ulimit nofile=1024:${over}: the hard limit ${over} is above this user's hard nofile limit of ${hard}`));
    assert.match(bad.stderr, /an unprivileged user cannot raise a hard limit/);
  }
  for (const [arg, want] of [
    ['bogus=1', /invalid ulimit type: bogus/],
    ['nofile=2048:1024', /ulimit soft limit must be less than or equal to hard limit: 2048 > 1024/],
    ['nofile', /invalid ulimit argument: nofile/],
  ] as const) {
    const b = await build(e, ['--ulimit', arg, e.ctx]);
    assert.equal(b.code, 1, arg);
    assert.match(b.stderr, want, arg);
  }
});

test('RUN --security=insecure needs --allow security.insecure; with it the step has every capability of the namespace', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox',
      'RUN grep CapEff /proc/self/status > /sandbox-caps && (mkdir -p /m && mount -t tmpfs none /m 2>/dev/null && echo yes || echo no) > /sandbox-mount',
      'RUN --security=insecure grep CapEff /proc/self/status > /insecure-caps && (mkdir -p /m && mount -t tmpfs none /m && echo yes || echo no) > /insecure-mount',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const denied = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /security\.insecure is not allowed: \[3\/3\] RUN --security=insecure grep CapEff .*\(Dockerfile:3\) — /);
  assert.match(denied.stderr, /pass --allow security\.insecure/);
  assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], [], 'nothing ran, nothing was written');

  const r = await build(e, ['--allow', 'security.insecure', '-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const caps = (f: string) => BigInt('0x' + fs.readFileSync(path.join(out, f), 'utf8').trim().split(/\s+/)[1]);
  assert.equal(caps('sandbox-caps'), 0xa80425fbn, 'the sandbox keeps BuildKit\'s default set');
  assert.ok(caps('insecure-caps') > caps('sandbox-caps'));
  assert.ok((caps('insecure-caps') >> 21n) & 1n, 'CAP_SYS_ADMIN');
  assert.equal(fs.readFileSync(path.join(out, 'sandbox-mount'), 'utf8').trim(), 'no');
  assert.equal(fs.readFileSync(path.join(out, 'insecure-mount'), 'utf8').trim(), 'yes');
});
