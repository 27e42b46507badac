// Stages: naming, --from by name/index/image, forward references, --target,
// pruning of unused stages, FROM <stage>, ONBUILD triggers, named contexts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecVertex, FileVertex } from '../../lib/graph/types';
import { build, chain, history, input, named, rejects, resolved, root, vertices } from './graphs/helpers';

const MULTI = `FROM busybox AS Builder
RUN echo build > /out
FROM alpine:3.19 AS unused
RUN echo never
FROM busybox
COPY --from=builder /out /a
COPY --from=0 /out /b
`;

test('stage names are case-insensitive; --from by name and by index reach the same stage', async () => {
  const g = await build(MULTI);
  const a = named(g, 'COPY --from=builder') as FileVertex;
  const b = named(g, 'COPY --from=0') as FileVertex;
  assert.equal(a.name, '[stage-2 2/3] COPY --from=builder /out /a');
  assert.equal(b.name, '[stage-2 3/3] COPY --from=0 /out /b');
  const builderRun = named(g, '[builder 2/2] RUN echo build > /out');
  assert.equal(input(g, a, (a.actions[0] as { src: number }).src).id, builderRun.id);
  assert.equal(input(g, b, (b.actions[0] as { src: number }).src).id, builderRun.id);
});

test('stages the target does not need are not in the graph (nor resolved)', async () => {
  resolved.length = 0;
  const g = await build(MULTI);
  assert.ok(!vertices(g).some((v) => v.name.includes('never') || v.name.includes('alpine')));
  assert.ok(!resolved.some((r) => r.includes('alpine')), 'unused stage base is not resolved');
});

test('--target picks a stage; unknown target suggests the closest and lists stages', async () => {
  const g = await build(MULTI, { target: 'UNUSED' });
  assert.deepEqual(chain(g), ['[unused 1/2] FROM docker.io/library/alpine:3.19@sha256:' + 'a'.repeat(64), '[unused 2/2] RUN echo never']);
  await assert.rejects(build(MULTI, { target: 'buidler' }), (e: Error & { hint?: string }) => {
    assert.match(e.message, /target stage "buidler" could not be found \(did you mean "builder"\?\)/);
    assert.match(e.hint!, /available stages: builder, unused/);
    return true;
  });
  await rejects(build(MULTI, { target: 'zzz' }), /target stage "zzz" could not be found$/);
});

test('parse-level errors in unused stages still fail the build', async () => {
  await rejects(build('FROM busybox AS a\nFROM busybox AS A\nFROM busybox\n'), /duplicate stage name "a"/, 2);
  await rejects(build('FROM busybox AS 1abc\nFROM busybox\n'), /invalid name for build stage/, 1);
});

test('COPY --from a stage defined later is an error with the line (when that stage is built)', async () => {
  const df = 'FROM busybox AS first\nRUN true\nCOPY --from=later /x /x\nFROM busybox AS later\nFROM scratch\nCOPY --from=first / /\n';
  await rejects(build(df), /cannot copy from stage "later", it needs to be defined before current stage "first"/, 3);
  await rejects(build('FROM busybox\nCOPY --from=1 /x /x\nFROM busybox\n', { target: undefined }).then(() => build('FROM busybox AS a\nCOPY --from=1 /x /x\nFROM busybox\n', { target: 'a' })), /cannot copy from stage "1"/, 2);
  // Like BuildKit, a stage nobody builds is not checked for this.
  await build('FROM busybox AS unused\nCOPY --from=later /x /x\nFROM busybox AS later\n');
});

test('COPY --from an index that does not exist, or its own stage, is an error', async () => {
  await rejects(build('FROM busybox\nCOPY --from=5 /x /x\n'), /invalid stage index 5/, 2);
  await rejects(build('FROM busybox AS me\nCOPY --from=me /x /x\n'), /circular dependency detected on stage: me/, 2);
});

test('COPY --from with a variable is rejected with the workaround', async () => {
  await assert.rejects(build('ARG SRC=busybox\nFROM busybox\nARG SRC\nCOPY --from=$SRC /x /x\n'), (e: Error & { line: number; hint?: string }) => {
    assert.match(e.message, /variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround/);
    assert.equal(e.line, 4);
    return true;
  });
});

test('COPY --from an image reference creates an image source', async () => {
  const g = await build('FROM scratch\nCOPY --from=busybox:latest /bin/busybox /busybox\n');
  const c = root(g) as FileVertex;
  assert.equal(c.name, '[1/1] COPY --from=busybox:latest /bin/busybox /busybox');
  assert.equal(c.base, -1);
  const src = input(g, c, 0);
  assert.equal(src.kind, 'image');
  assert.equal(src.kind === 'image' && src.ref, 'docker.io/library/busybox:latest');
  assert.equal(src.kind === 'image' && src.resolvedDigest, 'sha256:' + 'a'.repeat(64));
});

test('FROM <stage> inherits the stage result and config, and keeps its own numbering', async () => {
  const df = 'FROM busybox AS base\nENV A=1\nWORKDIR /w\nFROM base AS next\nRUN pwd\n';
  const g = await build(df);
  const r = named(g, 'RUN pwd') as ExecVertex;
  assert.equal(r.name, '[next 1/1] RUN pwd');
  assert.equal(r.cwd, '/w');
  assert.ok(r.env.includes('A=1'));
  assert.equal(input(g, r, 0).name, '[base 2/2] WORKDIR /w');
  assert.deepEqual(history(g).slice(1), ['ENV A=1 (empty)', 'WORKDIR /w', 'RUN /bin/sh -c pwd # buildkit']);
});

test('a lone stage has no stage label, even when named', async () => {
  const g = await build('FROM busybox AS only\nRUN true\n');
  assert.deepEqual(chain(g), ['[1/2] FROM docker.io/library/busybox:latest@sha256:' + 'a'.repeat(64), '[2/2] RUN true']);
});

test('progress numbers pad to the width of the total', async () => {
  const df = 'FROM busybox\n' + Array.from({ length: 11 }, (_, i) => `RUN echo ${i}`).join('\n') + '\n';
  const g = await build(df);
  assert.equal(named(g, 'RUN echo 0').name, '[ 2/12] RUN echo 0');
  assert.equal(named(g, 'RUN echo 10').name, '[12/12] RUN echo 10');
});

test('identical work in two stages is one vertex', async () => {
  const df = 'FROM busybox AS a\nRUN make\nFROM busybox AS b\nRUN make\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n';
  const g = await build(df);
  const runs = vertices(g).filter((v) => v.kind === 'exec');
  assert.equal(runs.length, 1);
  assert.equal(vertices(g).filter((v) => v.kind === 'image').length, 1);
});

test('ONBUILD triggers of a base image run once, right after FROM, and are not inherited', async () => {
  const df = 'FROM onbuild\nRUN echo mine\n';
  const g = await build(df);
  assert.deepEqual(chain(g), [
    '[1/4] FROM docker.io/library/onbuild:latest@sha256:' + 'a'.repeat(64),
    '[2/4] ONBUILD COPY app.txt /app/',
    '[3/4] ONBUILD RUN echo triggered',
    '[4/4] RUN echo mine',
  ]);
  assert.equal(g.config.config!.OnBuild, undefined);
  assert.deepEqual(history(g).slice(1), ['COPY app.txt /app/ # buildkit', 'RUN /bin/sh -c echo triggered # buildkit', 'RUN /bin/sh -c echo mine # buildkit']);
  // A stage built FROM that stage does not run them again.
  const g2 = await build('FROM onbuild AS a\nFROM a\nRUN echo child\n');
  assert.equal(vertices(g2).filter((v) => v.name.includes('triggered')).length, 1);
});

test('ONBUILD written in a stage runs once in a stage built FROM it (BuildKit), and is not inherited', async () => {
  const g = await build('FROM busybox AS a\nONBUILD RUN echo later\nFROM a AS b\nRUN echo child\nFROM b\nRUN echo grandchild\n');
  assert.equal(named(g, 'later').name, '[b 1/2] ONBUILD RUN echo later');
  assert.equal(vertices(g).filter((v) => v.name.includes('later')).length, 1);
  assert.equal(g.config.config!.OnBuild, undefined);
  const a = await build('FROM busybox AS a\nONBUILD RUN echo later\n');
  assert.deepEqual(a.config.config!.OnBuild, ['RUN echo later']);
  assert.ok(!vertices(a).some((v) => v.name.includes('later')));
});

test('an ONBUILD trigger is stored unchecked; only a stage built FROM it parses (and rejects) it, as BuildKit', async () => {
  // unknown word, unknown flag, missing destination: all kept as text in the image config
  const a = await build('FROM busybox AS a\nONBUILD FETCH x\nONBUILD COPY --frm=x a /b\nONBUILD COPY lonely\n');
  assert.deepEqual(a.config.config!.OnBuild, ['FETCH x', 'COPY --frm=x a /b', 'COPY lonely']);
  // a child stage runs the triggers and fails on the first bad one, naming it
  await rejects(build('FROM busybox AS a\nONBUILD FETCH x\nFROM a\nRUN true\n'), /FETCH/, 3);
});

test('named build contexts replace images and provide --from sources', async () => {
  const df = 'FROM busybox\nCOPY --from=assets /logo.png /srv/\nCOPY --from=tools /bin/tool /usr/bin/\n';
  const g = await build(df, {
    namedContexts: { busybox: { kind: 'image', ref: 'alpine:3.19' }, assets: { kind: 'local', ref: 'assets' }, tools: { kind: 'image', ref: 'node:20' } },
  });
  assert.equal(chain(g)[0], '[1/3] FROM docker.io/library/alpine:3.19@sha256:' + 'a'.repeat(64));
  const c = named(g, 'logo') as FileVertex;
  const src = input(g, c, (c.actions[0] as { src: number }).src);
  assert.equal(src.kind, 'local');
  assert.equal(src.kind === 'local' && src.source, 'assets');
  const t = named(g, 'tool') as FileVertex;
  const ts = input(g, t, (t.actions[0] as { src: number }).src);
  assert.equal(ts.kind === 'image' && ts.ref, 'docker.io/library/node:20');
});

test('a named context replaces a stage of that name; image names match in familiar form', async () => {
  const df = 'FROM busybox AS deps\nRUN echo slow\nFROM docker.io/library/alpine:latest\nCOPY --from=deps /x /x\n';
  resolved.length = 0;
  const g = await build(df, {
    namedContexts: { deps: { kind: 'local', ref: 'vendor-dir' }, alpine: { kind: 'image', ref: 'node:20' } },
  });
  assert.ok(!vertices(g).some((v) => v.name.includes('slow')), 'the replaced stage does not run');
  assert.ok(!resolved.some((r) => r.startsWith('docker.io/library/busybox')), 'nor is its base resolved');
  const c = root(g) as FileVertex;
  const src = input(g, c, (c.actions[0] as { src: number }).src);
  assert.equal(src.kind === 'local' && src.source, 'vendor-dir');
  assert.equal(chain(g)[0], '[stage-1 1/2] FROM docker.io/library/node:20@sha256:' + 'a'.repeat(64));
  assert.deepEqual(g.config.config!.Entrypoint, ['docker-entrypoint.sh'], 'config comes from the replacing image');
});

test('FROM naming a stage defined later is an image reference, as in BuildKit', async () => {
  const g = await build('FROM later AS first\nRUN true\nFROM busybox AS later\n', { target: 'first' });
  assert.equal(chain(g)[0], '[first 1/2] FROM docker.io/library/later:latest');
});

test('a resolved base image without layers is scratch: no FROM vertex, step still counted', async () => {
  const g = await build('FROM empty:1\nCOPY a /a\n', {
    resolveImageConfig: async (ref) => ({ ref, digest: 'sha256:' + 'c'.repeat(64), config: { architecture: 'amd64', os: 'linux', config: { Env: ['X=1'] }, rootfs: { type: 'layers', diff_ids: [] }, history: [{ created_by: 'nothing', empty_layer: true }] } }),
  });
  assert.deepEqual(chain(g), ['[1/2] COPY a /a']);
  assert.equal((root(g) as FileVertex).base, -1);
  assert.deepEqual(g.config.config!.Env, ['X=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
});

test('a failing image lookup names the line and keeps the resolver hint', async () => {
  const failing = async (): Promise<never> => {
    throw Object.assign(new Error('manifest unknown'), { hint: 'check the tag' });
  };
  await assert.rejects(build('FROM busybox AS a\nRUN true\nFROM scratch\nCOPY --from=nosuch:1 / /\n', { resolveImageConfig: failing }), (e: Error & { line: number; hint?: string }) => {
    assert.match(e.message, /^Dockerfile:4: failed to resolve source metadata for docker.io\/library\/nosuch:1: manifest unknown/);
    assert.equal(e.line, 4);
    assert.equal(e.hint, 'check the tag');
    return true;
  });
});

test('FROM --platform sets the stage platform; other stages keep the target platform', async () => {
  const df = 'FROM --platform=linux/arm64 busybox AS arm\nRUN uname -m\nFROM busybox\nCOPY --from=arm /x /x\nRUN true\n';
  const g = await build(df, { targetPlatform: { os: 'linux', architecture: 'amd64' } });
  assert.deepEqual(named(g, 'uname').platform, { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(named(g, 'RUN true').platform, { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(g.platform, { os: 'linux', architecture: 'amd64' });
  await rejects(build('FROM --platform=linux/a/b/c busybox\n'), /failed to parse platform/, 1);
});

test('Dockerfile without FROM, or with instructions before FROM, is an error', async () => {
  await rejects(build('ARG A=1\n'), /dockerfile contains no stages to build/);
  await rejects(build('RUN true\nFROM busybox\n'), /no build stage in current context|must come after FROM|FROM/, 1);
});

test('a cycle through several stages is found before any is built, named after the first stage that reaches it', async () => {
  const df = 'FROM busybox AS one\nCOPY --from=three /a /a\nFROM busybox AS two\nCOPY --from=one /b /b\nFROM busybox AS three\nCOPY --from=two /c /c\n';
  await rejects(build(df), /circular dependency detected on stage: one$/, 2);
  // RUN --mount from= is an edge as well; an unnamed stage is "stage-N".
  await rejects(build('FROM busybox\nRUN --mount=from=x,target=/m true\nFROM busybox AS x\nCOPY --from=0 /d /d\n'), /circular dependency detected on stage: stage-0$/, 2);
  await rejects(build('FROM busybox\nCOPY --from=0 /x /x\n'), /circular dependency detected on stage: stage-0$/, 2);
  // A stage reached only through FROM <stage> is not an edge: no cycle here.
  await build('FROM busybox AS base\nRUN true\nFROM base AS next\nCOPY --from=base /a /a\n');
});

test('RUN --mount from a stage defined later says which mount', async () => {
  const df = 'FROM busybox AS first\nRUN --mount=from=later,target=/src ls /src\nFROM busybox AS later\nFROM first\n';
  await rejects(build(df), /cannot mount from stage "later" to "\/src", stage needs to be defined before current command/, 2);
});

test('FROM matches a stage by its name as written: "FROM Base" is an image name (invalid), "FROM SCRATCH" too', async () => {
  await build('FROM busybox AS Base\nRUN true\nFROM base\n');
  await rejects(build('FROM busybox AS base\nRUN true\nFROM Base\n'), /must be lowercase/, 3);
  await rejects(build('FROM SCRATCH\n'), /must be lowercase/, 1);
});
