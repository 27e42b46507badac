// ARG scoping and build-arg behaviour of the converter (BuildKit semantics).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecVertex } from '../../lib/graph/types';
import { BASE_DIFF, DIGEST_A, build, history, named, resolved, vertices } from './graphs/helpers';
import { parsePlatform } from '../../lib/images/platform';

const run = async (df: string, opts = {}, step = 'RUN'): Promise<ExecVertex> => named(await build(df, opts), step) as ExecVertex;

test('global ARG is usable in FROM but invisible in the stage until re-declared', async () => {
  const g = await build('ARG TAG=3.19\nFROM alpine:${TAG}\nRUN echo "[$TAG]"\nARG TAG\nRUN echo "<$TAG>"\n');
  assert.ok(resolved.includes('docker.io/library/alpine:3.19 linux/amd64'));
  const before = named(g, 'echo "[') as ExecVertex;
  const after = named(g, 'echo "<') as ExecVertex;
  assert.ok(!before.env.some((e) => e.startsWith('TAG=')), 'not in scope before ARG TAG');
  assert.ok(after.env.includes('TAG=3.19'), 're-declared ARG inherits the global default');
  // The progress name substitutes only what is set at that point.
  assert.equal(before.name, '[2/3] RUN echo "[$TAG]"');
  assert.equal(after.name, '[3/3] RUN echo "<3.19>"');
  assert.deepEqual(history(g).slice(-3), [
    'RUN /bin/sh -c echo "[$TAG]" # buildkit',
    'ARG TAG=3.19 (empty)',
    'RUN |1 TAG=3.19 /bin/sh -c echo "<$TAG>" # buildkit',
  ]);
});

test('build args override global and stage defaults', async () => {
  const df = 'ARG TAG=3.18\nFROM alpine:${TAG}\nARG TAG\nARG MODE=debug\nRUN make $MODE\n';
  const g = await build(df, { buildArgs: { TAG: '3.19', MODE: 'release' } });
  const r = named(g, 'RUN') as ExecVertex;
  assert.ok(r.env.includes('TAG=3.19') && r.env.includes('MODE=release'));
  assert.equal(r.name, '[2/2] RUN make release');
  assert.equal(history(g).at(-1), 'RUN |2 TAG=3.19 MODE=release /bin/sh -c make $MODE # buildkit');
  assert.deepEqual(g.warnings, []);
});

test('ARG scoping matrix: default, build-arg, global, none', async () => {
  const df = [
    'ARG G1=global1',
    'ARG G2',
    'FROM busybox',
    'ARG G1',
    'ARG G2',
    'ARG L1=local',
    'ARG L2',
    'ARG G1_COPY=$G1',
    'RUN env',
  ].join('\n');
  const r = await run(df, { buildArgs: { G2: 'fromcli' } });
  const env = Object.fromEntries(r.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  assert.equal(env.G1, 'global1');
  assert.equal(env.G2, 'fromcli');
  assert.equal(env.L1, 'local');
  assert.equal('L2' in env, false, 'an ARG with no value is not in the environment');
  assert.equal(env.G1_COPY, 'global1', 'a default expands earlier ARGs');
});

test('a later global ARG without a value keeps the earlier global value', async () => {
  const g = await build('ARG V=one\nARG V\nFROM busybox\nARG V\nRUN echo $V\n');
  assert.ok((named(g, 'RUN') as ExecVertex).env.includes('V=one'));
});

test('ARG without value still appears in RUN history as KEY=', async () => {
  const g = await build('FROM busybox\nARG EMPTY\nRUN true\n');
  assert.equal(history(g).at(-1), 'RUN |1 EMPTY= /bin/sh -c true # buildkit');
});

test('ENV after ARG shadows it; a later ARG re-enters the RUN env (BuildKit), never the image Env', async () => {
  const g = await build('FROM busybox\nARG V=arg\nENV V=env\nRUN echo $V\nARG V=again\nRUN echo second $V\n', { buildArgs: { V: 'cli' } });
  const first = named(g, 'RUN echo env') as ExecVertex;
  assert.ok(first.env.includes('V=env') && !first.env.includes('V=cli'));
  assert.equal(history(g)[3], 'RUN |1 V=env /bin/sh -c echo $V # buildkit');
  const second = named(g, 'second') as ExecVertex;
  assert.ok(second.env.includes('V=cli'), 'dockerfile2llb adds a declared ARG to the state env, over ENV');
  assert.equal(history(g).at(-1), 'RUN |1 V=cli /bin/sh -c echo second $V # buildkit');
  assert.deepEqual(g.config.config!.Env, ['PATH=/bin', 'V=env']);
});

test('a stage built FROM another inherits the ARGs declared there (BuildKit): RUN env and history; other stages do not', async () => {
  const df = 'FROM busybox AS base\nARG NAME=joe\nARG EMPTY\nFROM base AS child\nRUN echo hello $NAME\nFROM busybox AS other\nRUN echo other $NAME\n';
  const g = await build(df, { target: 'child' });
  const r = named(g, 'hello') as ExecVertex;
  assert.ok(r.env.includes('NAME=joe'), r.env.join(' '));
  assert.equal(history(g).at(-1), 'RUN |2 NAME=joe EMPTY= /bin/sh -c echo hello $NAME # buildkit');
  assert.deepEqual(g.config.config!.Env, ['PATH=/bin'], 'still not in the image Env');
  const o = await build(df, { target: 'other' });
  assert.ok(!(named(o, 'echo other') as ExecVertex).env.some((e) => e.startsWith('NAME=')));
  assert.equal(history(o).at(-1), 'RUN /bin/sh -c echo other $NAME # buildkit');
});

test('ARG values are not persisted in the image Env', async () => {
  const g = await build('FROM busybox\nARG SECRETISH=1\nRUN true\n');
  assert.deepEqual(g.config.config!.Env, ['PATH=/bin']);
});

test('unused build args warn (sorted), declared ones in unused stages count too only if reached', async () => {
  const df = 'FROM busybox AS a\nARG ONLY_A\nFROM busybox AS b\nARG USED\nRUN true\n';
  const g = await build(df, { target: 'b', buildArgs: { USED: '1', ZED: '2', ONLY_A: '3', HTTP_PROXY: 'http://p' } });
  assert.deepEqual(g.warnings.map((w) => w.message), ['[Warning] One or more build-args [ONLY_A ZED] were not consumed']);
});

test('proxy build args reach RUN without declaration and stay out of history and ids', async () => {
  const df = 'FROM busybox\nRUN wget http://example/\n';
  const plain = await build(df);
  const proxied = await build(df, { buildArgs: { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' } });
  const r = named(proxied, 'RUN') as ExecVertex;
  assert.deepEqual(r.proxyEnv, ['HTTP_PROXY=http://proxy:3128', 'http_proxy=http://proxy:3128', 'NO_PROXY=localhost', 'no_proxy=localhost'], 'both spellings, as BuildKit');
  assert.ok(!r.env.some((e) => e.startsWith('HTTP_PROXY')));
  assert.equal(history(proxied).at(-1), 'RUN /bin/sh -c wget http://example/ # buildkit');
  assert.equal(r.id, named(plain, 'RUN').id, 'proxy settings do not change the vertex id');
  assert.deepEqual(proxied.warnings, []);
});

test('declared proxy ARG behaves like any ARG', async () => {
  const g = await build('FROM busybox\nARG HTTP_PROXY\nRUN true\n', { buildArgs: { HTTP_PROXY: 'http://p' } });
  assert.equal(history(g).at(-1), 'RUN |1 HTTP_PROXY=http://p /bin/sh -c true # buildkit');
});

test('automatic platform ARGs: global scope in FROM, stage scope after ARG', async () => {
  const df = [
    'FROM --platform=$BUILDPLATFORM busybox AS build',
    'ARG TARGETARCH',
    'ARG TARGETPLATFORM TARGETVARIANT BUILDOS',
    'RUN echo $TARGETARCH $TARGETPLATFORM $TARGETVARIANT $BUILDOS',
    'RUN echo $BUILDARCH',
  ].join('\n');
  const g = await build(df, {
    targetPlatform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    buildPlatform: { os: 'linux', architecture: 'amd64' },
  });
  assert.ok(resolved.includes('docker.io/library/busybox:latest linux/amd64'), 'FROM --platform=$BUILDPLATFORM resolves for the build platform');
  const r = named(g, 'RUN echo arm') as ExecVertex;
  assert.equal(r.name, '[2/3] RUN echo arm linux/arm/v7 v7 linux');
  assert.deepEqual(r.platform, { os: 'linux', architecture: 'amd64' });
  const r2 = named(g, 'BUILDARCH') as ExecVertex;
  assert.ok(!r2.env.some((e) => e.startsWith('BUILDARCH=')), 'undeclared automatic ARG is not in scope');
  // The result is for the target platform even though this stage runs on the build platform.
  assert.deepEqual(g.platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
});

test('automatic platform ARGs have BuildKit\'s values for amd64, arm64 (no variant) and arm/v7 targets', async () => {
  const keys = ['TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT', 'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT'];
  const df = `FROM busybox\nARG ${keys.join(' ')}\nRUN true\n`;
  const onAmd64 = ['linux/amd64', 'linux', 'amd64', ''];
  const cases: [string, string[]][] = [
    ['linux/amd64', ['linux/amd64', 'linux', 'amd64', '']],
    ['linux/arm64/v8', ['linux/arm64', 'linux', 'arm64', '']],
    ['arm64', ['linux/arm64', 'linux', 'arm64', '']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux', 'arm', 'v7']],
    ['linux/arm', ['linux/arm/v7', 'linux', 'arm', 'v7']],
  ];
  for (const [spec, target] of cases) {
    const g = await build(df, { targetPlatform: parsePlatform(spec), buildPlatform: parsePlatform('linux/amd64') });
    const env = (named(g, 'RUN true') as ExecVertex).env;
    assert.deepEqual(
      keys.map((k) => env.find((e) => e.startsWith(`${k}=`))),
      [...target, ...onAmd64].map((v, i) => `${keys[i]}=${v}`),
      spec,
    );
    assert.equal(g.config.variant, target[3] || undefined, `${spec}: the image config's variant`);
  }
  // A base whose config says arm64/v8: an explicit linux/arm64 target has no variant, so the result has none.
  const v8 = await build('FROM busybox\n', {
    targetPlatform: parsePlatform('linux/arm64'),
    resolveImageConfig: async (ref) => ({ ref, digest: DIGEST_A, config: { architecture: 'arm64', os: 'linux', variant: 'v8', config: {}, rootfs: { type: 'layers', diff_ids: [BASE_DIFF] } } }),
  });
  assert.deepEqual([v8.config.architecture, v8.config.variant], ['arm64', undefined]);
});

test('global ARG defaults can use automatic ARGs and earlier global ARGs', async () => {
  const df = 'ARG OS=$TARGETOS\nARG IMG=busybox\nARG REF=${IMG}:latest\nFROM ${REF}\nARG OS\nRUN echo $OS\n';
  const g = await build(df);
  assert.ok(named(g, 'FROM docker.io/library/busybox:latest'));
  assert.ok((named(g, 'RUN') as ExecVertex).env.includes('OS=linux'));
});

test('FROM with an unset ARG is an error naming the line', async () => {
  await assert.rejects(build('ARG IMG\nFROM ${IMG}\n'), (e: Error & { line: number }) => {
    assert.match(e.message, /base name \(\$\{IMG\}\) should not be blank/);
    assert.equal(e.line, 2);
    return true;
  });
});

test('RUN, CMD and ENTRYPOINT are not expanded by the frontend', async () => {
  const g = await build('FROM busybox\nENV X=1\nRUN echo $X\nCMD echo $X\nENTRYPOINT ["echo", "$X"]\n');
  const r = named(g, 'RUN') as ExecVertex;
  assert.deepEqual(r.args, ['/bin/sh', '-c', 'echo $X']);
  assert.deepEqual(g.config.config!.Entrypoint, ['echo', '$X']);
});

test('TARGETSTAGE: --target as given, else the last stage\'s name, else "default"; only after ARG TARGETSTAGE', async () => {
  const df = 'FROM busybox AS base\nRUN echo a:$TARGETSTAGE\nARG TARGETSTAGE\nRUN echo b:$TARGETSTAGE\nFROM scratch AS foo\nCOPY --from=base /x /\nFROM scratch\nCOPY --from=base /x /\n';
  const runs = (g: Awaited<ReturnType<typeof build>>) => vertices(g).filter((v): v is ExecVertex => v.kind === 'exec').map((v) => v.args.at(-1)).sort();
  assert.deepEqual(runs(await build(df)), ['echo a:$TARGETSTAGE', 'echo b:$TARGETSTAGE']);
  const env = async (opts: Parameters<typeof build>[1]) =>
    vertices(await build(df, opts)).filter((v): v is ExecVertex => v.kind === 'exec').flatMap((v) => v.env.filter((e) => e.startsWith('TARGETSTAGE=')));
  assert.deepEqual(await env({}), ['TARGETSTAGE=default']);
  assert.deepEqual(await env({ target: 'foo' }), ['TARGETSTAGE=foo']);
  assert.deepEqual(await env({ target: 'base' }), ['TARGETSTAGE=base']);
  assert.deepEqual(
    vertices(await build(df + 'FROM scratch AS final\nCOPY --from=base /x /\n')).filter((v): v is ExecVertex => v.kind === 'exec').flatMap((v) => v.env.filter((e) => e.startsWith('TARGETSTAGE='))),
    ['TARGETSTAGE=final'],
  );
});

test('BUILDKIT_SBOM_SCAN_STAGE / _CONTEXT declared as ARG stay out of the RUN environment but not its history', async () => {
  const g = await build('FROM busybox\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nARG OTHER=1\nRUN echo hi\n');
  const run = vertices(g).find((v): v is ExecVertex => v.kind === 'exec')!;
  assert.deepEqual(run.env, ['PATH=/bin', 'OTHER=1']);
  assert.equal(history(g).at(-1), 'RUN |2 BUILDKIT_SBOM_SCAN_STAGE=true OTHER=1 /bin/sh -c echo hi # buildkit');
});
