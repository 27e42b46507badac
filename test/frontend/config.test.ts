// Image config accumulation and history, checked against Docker/BuildKit's output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileVertex } from '../../lib/graph/types';
import { BASE_DIFF, build, history, named, rejects } from './graphs/helpers';
import { goDuration, goQuote, goQuoteSlice, parsePortSpec } from '../../lib/frontend/dockerfile/config';

test('FROM scratch config: PATH and WorkingDir /, no layers, root null', async () => {
  const g = await build('FROM scratch\nENV A=1\n');
  assert.equal(g.root, null);
  assert.deepEqual(Object.keys(g.vertices), []);
  assert.deepEqual(g.config.config, {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1'],
    WorkingDir: '/',
  });
  assert.deepEqual(g.config.rootfs, { type: 'layers', diff_ids: [] });
  assert.deepEqual(history(g), ['ENV A=1 (empty)']);
  assert.equal(g.config.history![0].comment, 'buildkit.dockerfile.v0');
});

test('base config is inherited; ENV replaces in place; history appends', async () => {
  const g = await build('FROM node:20\nENV NODE_VERSION=21 NEW=x\n');
  const c = g.config.config!;
  assert.deepEqual(c.Env, ['PATH=/usr/bin:/bin', 'NODE_VERSION=21', 'NEW=x']);
  assert.equal(c.User, 'node');
  assert.deepEqual(c.Entrypoint, ['docker-entrypoint.sh']);
  assert.deepEqual(c.Cmd, ['node']);
  assert.deepEqual(c.ExposedPorts, { '9229/tcp': {} });
  assert.deepEqual(c.Labels, { maintainer: 'node' });
  assert.deepEqual(g.config.rootfs.diff_ids, [BASE_DIFF]);
  assert.equal(g.config.history!.length, 2);
  assert.equal(g.config.history![1].created_by, 'ENV NODE_VERSION=21 NEW=x');
});

test('ENV values expand against the environment before the instruction', async () => {
  const g = await build('FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
  assert.deepEqual(g.config.config!.Env, ['PATH=/bin', 'abc=bye', 'def=hello', 'ghi=bye']);
});

test('ENTRYPOINT clears an inherited CMD but not one set in the same stage', async () => {
  let g = await build('FROM node:20\nENTRYPOINT ["/app"]\n');
  assert.equal(g.config.config!.Cmd, null);
  g = await build('FROM node:20\nCMD ["serve"]\nENTRYPOINT ["/app"]\n');
  assert.deepEqual(g.config.config!.Cmd, ['serve']);
  g = await build('FROM node:20\nENTRYPOINT ["/app"]\nCMD ["x"]\n');
  assert.deepEqual(g.config.config!.Cmd, ['x']);
  assert.deepEqual(history(g).slice(-2), ['ENTRYPOINT ["/app"] (empty)', 'CMD ["x"] (empty)']);
  g = await build('FROM node:20\nENTRYPOINT []\n');
  assert.equal(g.config.config!.Entrypoint, null);
  assert.equal(g.config.config!.Cmd, null);
  assert.equal(history(g).at(-1), 'ENTRYPOINT [] (empty)');
});


test('CMD/ENTRYPOINT shell form and SHELL history', async () => {
  const g = await build('FROM busybox\nSHELL ["/bin/bash", "-c"]\nCMD echo "hi there"\nENTRYPOINT exec app\n');
  const c = g.config.config!;
  assert.deepEqual(c.Shell, ['/bin/bash', '-c']);
  assert.deepEqual(c.Cmd, ['/bin/bash', '-c', 'echo "hi there"']);
  assert.deepEqual(c.Entrypoint, ['/bin/bash', '-c', 'exec app']);
  assert.deepEqual(history(g).slice(1), [
    'SHELL [/bin/bash -c] (empty)',
    'CMD ["/bin/bash" "-c" "echo \\"hi there\\""] (empty)',
    'ENTRYPOINT ["/bin/bash" "-c" "exec app"] (empty)',
  ]);
  assert.equal(c.ArgsEscaped, true, 'BuildKit sets ArgsEscaped with CMD on every platform');
});

test('EXPOSE: protocols, ranges, variables', async () => {
  const g = await build('FROM busybox\nENV P=8080\nEXPOSE 80 53/udp $P 8000-8002 9000-9001/UDP\n');
  assert.deepEqual(Object.keys(g.config.config!.ExposedPorts!).sort(), [
    '53/udp', '80/tcp', '8000/tcp', '8001/tcp', '8002/tcp', '8080/tcp', '9000/udp', '9001/udp',
  ]);
  // BuildKit sorts the specs as written ("$P" < "53/udp" < "80" ...) before expanding them.
  assert.equal(history(g).at(-1), 'EXPOSE [8080/tcp 53/udp 80/tcp 8000/tcp 8001/tcp 8002/tcp 9000/udp 9001/udp] (empty)');
  await rejects(build('FROM busybox\n\nEXPOSE 80/xyz\n'), /invalid proto: xyz/, 3);
  await rejects(build('FROM busybox\nEXPOSE 90-80\n'), /invalid containerPort: 90-80/, 2);
  await rejects(build('FROM busybox\nEXPOSE 8000-8001:80-82\n'), /invalid ranges specified for container and host Ports/, 2);
  await rejects(build('FROM busybox\nEXPOSE abc\n'), /invalid containerPort: abc/, 2);
});

test('parsePortSpec keeps only the container port of ip:host:container', () => {
  assert.deepEqual(parsePortSpec('127.0.0.1:8080:80/tcp'), ['80/tcp']);
  assert.deepEqual(parsePortSpec('80/'), ['80/tcp']);
  assert.deepEqual(parsePortSpec('[::1]:8080:80'), ['80/tcp']);
  assert.throws(() => parsePortSpec('/udp'), /no port specified: \/udp<empty>/);
});

test('WORKDIR: relative to the previous, mkdir step owned by USER, history', async () => {
  const g = await build('FROM busybox\nUSER app:staff\nWORKDIR /srv\nWORKDIR data\nWORKDIR ../logs\nWORKDIR /\n');
  assert.equal(g.config.config!.WorkingDir, '/');
  const w = named(g, 'WORKDIR data') as FileVertex;
  // Like BuildKit, every WORKDIR counts in the step total, even `WORKDIR /` which adds no vertex.
  assert.equal(w.name, '[3/5] WORKDIR data');
  assert.deepEqual(w.actions, [{ op: 'mkdir', path: '/srv/data', mode: 0o755, makeParents: true, chown: { user: 'app', group: 'staff' } }]);
  assert.deepEqual((named(g, 'WORKDIR ../logs') as FileVertex).actions[0], { op: 'mkdir', path: '/srv/logs', mode: 0o755, makeParents: true, chown: { user: 'app', group: 'staff' } });
  assert.deepEqual(history(g).slice(1), ['USER app:staff (empty)', 'WORKDIR /srv', 'WORKDIR /srv/data', 'WORKDIR /srv/logs', 'WORKDIR / (empty)']);
  const g2 = await build('FROM busybox\nENV D=/opt\nWORKDIR $D/app\nRUN pwd\n');
  assert.equal(g2.config.config!.WorkingDir, '/opt/app');
  assert.equal((named(g2, 'RUN pwd') as { cwd: string }).cwd, '/opt/app');
  assert.deepEqual((named(g2, 'WORKDIR') as FileVertex).actions[0], { op: 'mkdir', path: '/opt/app', mode: 0o755, makeParents: true });
});

test('USER, VOLUME, STOPSIGNAL, LABEL, MAINTAINER, ONBUILD', async () => {
  const df = [
    'FROM busybox',
    'ENV U=1000 V=/data',
    'USER ${U}:${U}',
    'VOLUME ["/cache", "$V"]',
    'VOLUME /a /b',
    'STOPSIGNAL SIGQUIT',
    'LABEL "com.example.vendor"="ACME" version=1.0 description="multi word"',
    'MAINTAINER Jane Doe <jane@example.com>',
    'ONBUILD RUN make  -C /src',
  ].join('\n');
  const g = await build(df, { labels: { version: '2.0', extra: 'x' } });
  const c = g.config.config!;
  assert.equal(c.User, '1000:1000');
  assert.deepEqual(c.Volumes, { '/cache': {}, '/data': {}, '/a': {}, '/b': {} });
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.Labels, { 'com.example.vendor': 'ACME', version: '2.0', description: 'multi word', extra: 'x' });
  assert.equal(g.config.author, 'Jane Doe <jane@example.com>');
  assert.deepEqual(c.OnBuild, ['RUN make  -C /src']);
  assert.deepEqual(history(g).slice(2), [
    'USER 1000:1000 (empty)',
    'VOLUME [/cache /data] (empty)',
    'VOLUME [/a /b] (empty)',
    'STOPSIGNAL SIGQUIT (empty)',
    'LABEL com.example.vendor=ACME version=1.0 description=multi word (empty)',
    'MAINTAINER Jane Doe <jane@example.com> (empty)',
  ], 'ONBUILD adds no history entry');
  await rejects(build('FROM busybox\nSTOPSIGNAL SIGFOO\n'), /invalid signal: SIGFOO/, 2);
  // moby/sys ParseSignal: any non-zero integer, names in any case, RTMIN+1..15 and RTMAX-14..1.
  for (const sig of ['100', '-1', 'sigrtmin+15', 'RTMAX-14', 'kill']) {
    assert.equal((await build(`FROM busybox\nSTOPSIGNAL ${sig}\n`)).config.config!.StopSignal, sig);
  }
  for (const sig of ['0', 'RTMIN+16', 'RTMAX-15', 'RTMAX+1']) await rejects(build(`FROM busybox\nSTOPSIGNAL ${sig}\n`), /invalid signal/, 2);
  await rejects(build('FROM busybox\nVOLUME ""\n'), /VOLUME specified can not be an empty string/, 2);
  await rejects(build('FROM busybox\nSHELL /bin/bash -c\n'), /SHELL requires the arguments to be in JSON form/, 2);
});

test('HEALTHCHECK: durations in ns, CMD and CMD-SHELL, NONE, history as current BuildKit writes it (Go %+v of the config)', async () => {
  let g = await build('FROM busybox\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m30s --retries=3 CMD curl -f http://localhost/ || exit 1\n');
  assert.deepEqual(g.config.config!.Healthcheck, {
    Test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
    Interval: 30e9,
    Timeout: 3e9,
    StartPeriod: 90e9,
    Retries: 3,
  });
  assert.equal(history(g).at(-1), 'HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:30s Timeout:3s StartPeriod:1m30s StartInterval:0s Retries:3} (empty)');
  g = await build('FROM busybox\nHEALTHCHECK --start-interval=500ms CMD ["/bin/check", "-v"]\n');
  assert.deepEqual(g.config.config!.Healthcheck, { Test: ['CMD', '/bin/check', '-v'], StartInterval: 5e8 });
  // Every option set, exec form: the words are printed bare, the sub-second interval as 250ms.
  g = await build('FROM busybox\nHEALTHCHECK --interval=2s --timeout=15s --start-period=4s --start-interval=250ms --retries=7 CMD ["sh", "-c", "exit 0"]\n');
  assert.equal(history(g).at(-1), 'HEALTHCHECK {Test:[CMD sh -c exit 0] Interval:2s Timeout:15s StartPeriod:4s StartInterval:250ms Retries:7} (empty)');
  g = await build('FROM busybox\nHEALTHCHECK --interval=60s --timeout=10s --retries=10 CMD kong health\n');
  assert.equal(history(g).at(-1), 'HEALTHCHECK {Test:[CMD-SHELL kong health] Interval:1m0s Timeout:10s StartPeriod:0s StartInterval:0s Retries:10} (empty)');
  g = await build('FROM busybox\nHEALTHCHECK NONE\n');
  assert.deepEqual(g.config.config!.Healthcheck, { Test: ['NONE'] });
  assert.equal(history(g).at(-1), 'HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0} (empty)');
  await rejects(build('FROM busybox\nHEALTHCHECK --interval=10 CMD true\n'), /duration/, 2);
  await rejects(build('FROM busybox\nHEALTHCHECK --interval=10us CMD true\n'), /Interval "interval" cannot be less than 1ms/, 2);
  await rejects(build('FROM busybox\nHEALTHCHECK --retries=-1 CMD true\n'), /--retries cannot be negative \(-1\)/, 2);
  await rejects(build('FROM busybox\nHEALTHCHECK CURL x\n'), /Unknown type "CURL" in HEALTHCHECK/, 2);
});

test('Go formatting helpers', () => {
  assert.equal(goQuote('a"b\\c\n\t\x01é'), '"a\\"b\\\\c\\n\\t\\x01é"');
  assert.equal(goQuoteSlice(['sh', '-c']), '["sh" "-c"]');
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(5e8), '500ms');
  assert.equal(goDuration(3.6e12 + 1e9), '1h0m1s');
  assert.equal(goDuration(300e9), '5m0s');
});

test('sourceDateEpoch sets created on the image and new history entries', async () => {
  const g = await build('FROM busybox\nRUN true\nENV A=1\n', { sourceDateEpoch: 1700000000 });
  assert.equal(g.config.created, '2023-11-14T22:13:20Z');
  assert.equal(g.config.history![0].created, undefined, 'base history untouched');
  assert.deepEqual(g.config.history!.slice(1).map((h) => h.created), ['2023-11-14T22:13:20Z', '2023-11-14T22:13:20Z']);
  const g2 = await build('FROM busybox\nRUN true\n');
  assert.equal(g2.config.created, undefined);
  const g3 = await build('FROM busybox\nRUN true\n', { buildArgs: { SOURCE_DATE_EPOCH: '0' } });
  assert.equal(g3.config.created, '1970-01-01T00:00:00Z');
  assert.deepEqual(g3.warnings, [], 'SOURCE_DATE_EPOCH is a built-in build arg');
});

test('layer-producing steps are not empty_layer; metadata steps are', async () => {
  const g = await build('FROM busybox\nCOPY a /a\nRUN true\nADD b /b\nUSER x\n');
  assert.deepEqual(history(g).slice(1), ['COPY a /a # buildkit', 'RUN /bin/sh -c true # buildkit', 'ADD b /b # buildkit', 'USER x (empty)']);
});

test('a base config keeps only what image-spec knows, without empty values, as BuildKit reads it', async () => {
  // As docker's classic builder wrote configs: container_config, docker_version, Hostname, nulls.
  const classic = {
    architecture: 'amd64',
    os: 'linux',
    docker_version: '20.10.7',
    container: 'abc',
    container_config: { Hostname: 'abc', Cmd: ['/bin/sh', '-c', '#(nop) CMD ["sh"]'] },
    config: {
      Hostname: '', Domainname: '', User: '', AttachStdin: false, Tty: false, Env: ['PATH=/bin'], Cmd: ['sh'], Image: 'sha256:0',
      Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null, ArgsEscaped: false, Shell: [],
      Healthcheck: { Test: ['CMD', 'true'], Interval: 0, Retries: 2 },
    },
    rootfs: { type: 'layers', diff_ids: [BASE_DIFF] },
    history: [{ created: '2021-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:x in / ', empty_layer: false, extra: 1 }],
  };
  const g = await build('FROM classic\nENV A=1\n', {
    resolveImageConfig: async (ref) => ({ ref, digest: 'sha256:' + 'c'.repeat(64), config: JSON.parse(JSON.stringify(classic)) }),
  });
  assert.deepEqual(Object.keys(g.config).sort(), ['architecture', 'config', 'history', 'os', 'rootfs']);
  assert.deepEqual(g.config.config, { Env: ['PATH=/bin', 'A=1'], Cmd: ['sh'], Healthcheck: { Test: ['CMD', 'true'], Retries: 2 } });
  assert.deepEqual(g.config.history![0], { created: '2021-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:x in / ' });
});

test('unknown base image (resolver returns null) builds with an empty config', async () => {
  const g = await build('FROM registry.local/unknown:1\nRUN true\n');
  const from = named(g, 'FROM');
  assert.equal(from.name, '[1/2] FROM registry.local/unknown:1');
  assert.equal(from.kind === 'image' && from.resolvedDigest, undefined);
  assert.deepEqual(g.config.config!.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
});
