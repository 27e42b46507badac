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
