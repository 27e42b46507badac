// RUN --mount sources and the step's cache: a bind mount from the build context
// is keyed by the files it mounts (another file of the context may change and the
// step stays cached), and a source that is not there fails before anything runs,
// in BuildKit's words. Real builds as the unprivileged test user.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { build, setup, skip, stepStates, steps } from './helpers';
import { cleanup } from '../helpers/rootless';

function stateOf(stderr: string, needle: string): string | undefined {
  return steps(stepStates(stderr)).find(([n]) => n.includes(needle))?.[1];
}

test('RUN --mount=source=FILE stays cached when another context file changes, reruns when FILE does', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox AS one',
      'RUN --mount=source=b.txt,target=/tmp/b.txt cat /tmp/b.txt > /b-copy',
      'FROM busybox AS two',
      'RUN --mount=target=/ctx cat /ctx/a.txt > /a-copy',
      'FROM scratch',
      'COPY --from=one /b-copy /',
      'COPY --from=two /a-copy /',
      '',
    ].join('\n'),
    'a.txt': 'first a\n',
    'b.txt': 'only b\n',
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const first = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(first.code, 0, first.stderr);

  fs.writeFileSync(path.join(e.ctx, 'a.txt'), 'second a\n');
  const second = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(stateOf(second.stderr, 'cat /tmp/b.txt'), 'CACHED');
  assert.equal(stateOf(second.stderr, 'cat /ctx/a.txt'), 'DONE'); // the whole context is mounted there
  assert.equal(fs.readFileSync(path.join(out, 'a-copy'), 'utf8'), 'second a\n');

  fs.writeFileSync(path.join(e.ctx, 'b.txt'), 'b changed\n');
  const third = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(third.code, 0, third.stderr);
  assert.equal(stateOf(third.stderr, 'cat /tmp/b.txt'), 'DONE');
  assert.equal(fs.readFileSync(path.join(out, 'b-copy'), 'utf8'), 'b changed\n');
});

test('a RUN --mount source missing from the context, a stage or a cache seed fails with "not found", the command not run', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: 'FROM busybox\nRUN --mount=type=bind,source=nope,target=/x echo RAN-ANYWAY\n',
    'Dockerfile.stage': 'FROM busybox AS a\nFROM busybox\nRUN --mount=type=bind,from=a,source=/no/such,target=/x echo RAN-ANYWAY\n',
    'Dockerfile.cache': 'FROM busybox AS a\nFROM busybox\nRUN --mount=type=cache,from=a,source=gone,target=/x echo RAN-ANYWAY\n',
  });
  t.after(() => cleanup(e.root));
  for (const [file, shown] of [
    ['Dockerfile', '/nope'],
    ['Dockerfile.stage', '/no/such'],
    ['Dockerfile.cache', '/gone'],
  ]) {
    const r = await build(e, ['-f', path.join(e.ctx, file), e.ctx]);
    assert.equal(r.code, 1, `${file}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`failed to compute cache key: "${shown}": not found`), `${file}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^#\d+ [\d.]+ RAN-ANYWAY$/m, file); // no output line of the command
  }
});

test('a cache mount with uid=/gid=/mode= is its own cache, made with them, not the plain cache of that id', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=cache,id=x,target=/c touch /c/root-file',
      'USER 1000',
      'RUN --mount=type=cache,id=x,target=/c,uid=1000 touch /c/user-file && ls /c && stat -c "%u %a" /c',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const r = await build(e, [e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => /^#\d+ \d+\.\d+ /.test(l)).map((l) => l.split(' ').slice(2).join(' '));
  assert.deepEqual(lines, ['user-file', '1000 755']);
});

test('RUN --mount from a stage whose mounted files did not change gives the earlier result, though the stage itself changed', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox AS build',
      'COPY cachebust /',
      'RUN mkdir /out && echo foo > /out/foo',
      'FROM busybox AS second',
      'RUN --mount=from=build,source=out,target=/out,rw touch /out/bar && head -c 32 /dev/urandom | od -An -tx1 > /unique',
      'FROM scratch',
      'COPY --from=second /unique /unique',
      '',
    ].join('\n'),
    cachebust: '0',
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const first = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(first.code, 0, first.stderr);
  const unique = fs.readFileSync(path.join(out, 'unique'), 'utf8');

  fs.writeFileSync(path.join(e.ctx, 'cachebust'), '1'); // the stage reruns, /out is the same
  const second = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(stateOf(second.stderr, 'echo foo'), 'DONE');
  assert.equal(fs.readFileSync(path.join(out, 'unique'), 'utf8'), unique);

  // The mounted files change: the step runs again.
  fs.writeFileSync(path.join(e.ctx, 'Dockerfile'), fs.readFileSync(path.join(e.ctx, 'Dockerfile'), 'utf8').replace('echo foo', 'echo bar'));
  const third = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(third.code, 0, third.stderr);
  assert.notEqual(fs.readFileSync(path.join(out, 'unique'), 'utf8'), unique);
});

test('a step mounting a stage and a context file reruns when the context file changes, though the stage\'s files did not', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox AS build',
      'COPY cachebust /',
      'RUN mkdir /out && echo foo > /out/foo',
      'FROM busybox AS second',
      'RUN --mount=from=build,source=out,target=/out --mount=source=input.txt,target=/in.txt cat /out/foo /in.txt > /both',
      'FROM scratch',
      'COPY --from=second /both /both',
      '',
    ].join('\n'),
    cachebust: '0',
    'input.txt': 'one\n',
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const first = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'both'), 'utf8'), 'foo\none\n');
  fs.writeFileSync(path.join(e.ctx, 'cachebust'), '1');
  fs.writeFileSync(path.join(e.ctx, 'input.txt'), 'two\n');
  const second = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'both'), 'utf8'), 'foo\ntwo\n');
});
