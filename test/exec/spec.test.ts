// The generated OCI runtime spec for a RUN step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSpec, currentCapabilities, mergeEnv, DEFAULT_CAPS, hardLimit, hostsFile, MASKED_PATHS, READONLY_PATHS, specJson, type OciMount, type SpecInput } from '../../lib/exec/spec';

const base: SpecInput = {
  rootfs: '/r',
  args: ['/bin/sh', '-c', 'true'],
  env: ['A=1'],
  cwd: '/work',
  uid: 1000,
  gid: 1000,
  additionalGids: [10],
  hostname: 'abc123',
  network: 'default',
  resolvConf: '/b/resolv.conf',
  hosts: '/b/hosts',
  freshProc: true,
  userMounts: [],
  nofile: 1048576,
  ttyGidMapped: true,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const spec = (over: Partial<SpecInput> = {}): any => buildSpec({ ...base, ...over });

test('process: args, env with default PATH, user, caps, rlimits, no terminal, setuid allowed', () => {
  const s = spec();
  assert.deepEqual(s.process.args, base.args);
  assert.equal(s.process.env[0], 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.ok(s.process.env.includes('A=1'));
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [10] });
  assert.equal(s.process.terminal, false);
  assert.equal(s.process.noNewPrivileges, false);
  assert.equal(s.process.cwd, '/work');
  assert.equal(DEFAULT_CAPS.length, 14);
  for (const k of ['bounding', 'effective', 'permitted']) assert.deepEqual(s.process.capabilities[k], DEFAULT_CAPS);
  assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.equal(spec({ env: ['PATH=/x'] }).process.env[0], 'PATH=/x');
  assert.equal(spec({ nofile: undefined }).process.rlimits, undefined);
});

test('env: PATH first even when the image sets it later; a repeated name replaces the first in place', () => {
  assert.deepEqual(spec({ env: ['A=1', 'PATH=/x', 'B=2'] }).process.env, ['PATH=/x', 'A=1', 'B=2']);
  // ENV SECRET_ENV=foo, then RUN --mount=type=secret,env=SECRET_ENV: one variable, the secret's value
  assert.deepEqual(spec({ env: ['SECRET_ENV=foo', 'C=3', 'SECRET_ENV=pw'] }).process.env.filter((e: string) => e.startsWith('SECRET_ENV=')), ['SECRET_ENV=pw']);
  assert.deepEqual(mergeEnv(['PATH=/p'], ['A=1', 'A', 'B=2', 'A=3']), ['PATH=/p', 'A=3', 'B=2']);
});

test('namespaces: no user ns; network ns only for network=none; pid unless /proc cannot be mounted', () => {
  const types = (s: { linux: { namespaces: { type: string }[] } }) => s.linux.namespaces.map((n) => n.type).sort();
  assert.deepEqual(types(spec()), ['ipc', 'mount', 'pid', 'uts']);
  assert.deepEqual(types(spec({ network: 'host' })), ['ipc', 'mount', 'pid', 'uts']);
  assert.deepEqual(types(spec({ network: 'none' })), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.deepEqual(types(spec({ freshProc: false })), ['ipc', 'mount', 'uts']);
  assert.equal(spec().linux.resources, undefined);
  assert.equal(spec().linux.cgroupsPath, undefined);
  assert.equal(spec().linux.uidMappings, undefined);
});

test('mounts: proc, dev, devpts, shm, mqueue, sys, resolv.conf, hosts', () => {
  const byDest = (s: { mounts: OciMount[] }): Map<string, OciMount> => new Map(s.mounts.map((m) => [m.destination, m]));
  const m = byDest(spec());
  assert.equal(m.get('/proc')!.type, 'proc');
  assert.ok(m.get('/dev')!.options!.includes('mode=755'));
  assert.ok(m.get('/dev/pts')!.options!.includes('gid=5'));
  assert.ok(!byDest(spec({ ttyGidMapped: false })).get('/dev/pts')!.options!.includes('gid=5'));
  assert.equal(m.get('/dev/mqueue')!.type, 'mqueue');
  assert.equal(m.get('/sys')!.type, 'bind');
  assert.ok(m.get('/sys')!.options!.includes('ro'));
  assert.equal(byDest(spec({ network: 'none' })).get('/sys')!.type, 'sysfs');
  assert.deepEqual([m.get('/etc/resolv.conf')!.source, m.get('/etc/hosts')!.source], ['/b/resolv.conf', '/b/hosts']);
  const fallback = byDest(spec({ freshProc: false })).get('/proc')!;
  assert.deepEqual([fallback.type, fallback.source], ['bind', '/proc']);
  assert.deepEqual(spec().linux.maskedPaths, MASKED_PATHS);
  assert.deepEqual(spec().linux.readonlyPaths, READONLY_PATHS);
});

test('hosts file: localhost, the hostname, extra hosts', () => {
  assert.equal(
    hostsFile('box', [{ host: 'reg', ip: '10.0.0.2' }]),
    '127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\treg\n',
  );
});

test('--shm-size and --ulimit: /dev/shm size (64m default), rlimits over the nofile default, unlimited as RLIM_INFINITY', () => {
  const shm = (s: { mounts: OciMount[] }) => s.mounts.find((m) => m.destination === '/dev/shm')!.options!;
  assert.ok(shm(spec()).includes('size=65536k'));
  assert.ok(shm(spec({ shmSize: 128 * 1024 * 1024 })).includes('size=131072k'));
  const s = spec({ rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }, { type: 'RLIMIT_CORE', soft: 'unlimited', hard: 'unlimited' }] });
  assert.deepEqual(s.process.rlimits[0], { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
  assert.match(specJson(s), /"type": "RLIMIT_CORE",\s*"soft": 18446744073709551615,\s*"hard": 18446744073709551615/);
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\nMax core file size        0                    unlimited            bytes\n';
  assert.equal(hardLimit('nofile', limits), 4096);
  assert.equal(hardLimit('core', limits), 'unlimited');
  assert.equal(hardLimit('bogus', limits), undefined);
});

test('RUN --security=insecure: every current capability in all five sets, no masked or read-only paths, /sys writable', () => {
  const s = spec({ insecure: true });
  for (const k of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']) assert.ok(s.process.capabilities[k].includes('CAP_CHOWN'), k);
  assert.deepEqual(s.linux.maskedPaths, []);
  assert.deepEqual(s.linux.readonlyPaths, []);
  assert.ok(!s.mounts.find((m: OciMount) => m.destination === '/sys').options.includes('ro'));
  assert.ok(spec().mounts.find((m: OciMount) => m.destination === '/sys').options.includes('ro'));
  assert.deepEqual(currentCapabilities('CapEff:\t0000000000200001\n'), ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
});
