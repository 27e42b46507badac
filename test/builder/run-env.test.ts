// What a RUN process finds in its environment, seen from inside the step: the
// variables in BuildKit's order (PATH first) and a secret's env= taking the place
// of an ENV of the same name (one variable: getenv() reads the first match).
// Real runc in the user namespace, as the unprivileged test user.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { build, setup, skip } from './helpers';
import { cleanup } from '../helpers/rootless';

// A step's output lines (the log lines under its "#N" header, without the time).
function stepOutput(stderr: string, needle: string): string[] {
  const header = stderr.split('\n').find((l) => /^#\d+ \[/.test(l) && l.includes(needle));
  assert.ok(header, `no step ${needle}: ${stderr}`);
  const n = header.split(' ')[0];
  return stderr
    .split('\n')
    .filter((l) => l.startsWith(n + ' ') && /^#\d+ \d+\.\d+ /.test(l))
    .map((l) => l.split(' ').slice(2).join(' '));
}

test('RUN env: PATH first, ENV in order; a secret env= replaces the ENV of that name for every reader', { skip }, async (t) => {
  const e = await setup({
    // Exec form: the variables reach env/printenv as runc passed them (a shell would rebuild the list).
    // The files of busybox without its config: no Env, so PATH is declared after the others.
    Dockerfile: [
      'FROM scratch',
      'COPY --from=busybox / /',
      'ENV SECRET_ENV=foo ZED=last',
      'ENV PATH=/usr/bin:/bin',
      'RUN ["env"]',
      'RUN --mount=type=secret,id=mysecret,env=SECRET_ENV ["env"]',
      '',
    ].join('\n'),
    pw: 'pw',
  });
  t.after(() => cleanup(e.root));
  const r = await build(e, ['--no-cache', '--secret', `id=mysecret,src=${path.join(e.ctx, 'pw')}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  // runc adds HOME after the rest when the image has none.
  assert.deepEqual(stepOutput(r.stderr, 'RUN ["env"]'), ['PATH=/usr/bin:/bin', 'SECRET_ENV=foo', 'ZED=last', 'HOME=/root']);
  // One SECRET_ENV, in its place, with the secret's value (getenv() reads the first one).
  assert.deepEqual(stepOutput(r.stderr, 'env=SECRET_ENV'), ['PATH=/usr/bin:/bin', 'SECRET_ENV=pw', 'ZED=last', 'HOME=/root']);
});

test('--build-arg BUILDKIT_SANDBOX_HOSTNAME names the RUN host; BUILDKIT_CACHE_MOUNT_NS keeps cache mounts apart', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox',
      'RUN hostname; grep -c "localhost foo$" /etc/hosts || true',
      'RUN --mount=type=cache,id=shared,target=/c ls /c; touch /c/was-here',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const r = await build(e, ['--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=foo', '--build-arg', 'BUILDKIT_CACHE_MOUNT_NS=one', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(stepOutput(r.stderr, 'RUN hostname'), ['foo', '1']);
  assert.doesNotMatch(r.stderr, /WARN.*BUILDKIT_/); // both are BuildKit's own arguments, not unused ones
  // Another namespace: another (empty) cache; the first namespace's cache still has the file.
  const two = await build(e, ['--no-cache', '--build-arg', 'BUILDKIT_CACHE_MOUNT_NS=two', e.ctx]);
  assert.equal(two.code, 0, two.stderr);
  assert.deepEqual(stepOutput(two.stderr, 'RUN hostname'), ['buildkitsandbox', '0']);
  assert.deepEqual(stepOutput(two.stderr, 'ls /c'), []);
  const one = await build(e, ['--no-cache', '--build-arg', 'BUILDKIT_CACHE_MOUNT_NS=one', e.ctx]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(stepOutput(one.stderr, 'ls /c'), ['was-here']);
});
