// The working directory of a RUN that is not there (removed by an earlier step, or
// named by the base image only): made before the step, as BuildKit's executor does,
// owned by the step's user; the directories above it that exist keep their owner.
// Real runc in the user namespace, as the unprivileged test user.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { build, setup, skip } from './helpers';
import { cleanup } from '../helpers/rootless';

test('a missing RUN working directory is made owned by the USER of the step', { skip }, async (t) => {
  const e = await setup({
    Dockerfile: [
      'FROM busybox AS s',
      'WORKDIR /srv/app/sub',
      'RUN rm -rf /srv/app',
      'USER 1234:5678',
      'RUN stat -c "%u:%g %a" /srv /srv/app /srv/app/sub > owners',
      'FROM scratch',
      'COPY --from=s /srv/app/sub/owners /',
      '',
    ].join('\n'),
  });
  t.after(() => cleanup(e.root));
  const out = path.join(e.root, 'out');
  const r = await build(e, ['-o', `type=local,dest=${out}`, e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(fs.readFileSync(path.join(out, 'owners'), 'utf8').trim().split('\n'), ['0:0 755', '1234:5678 755', '1234:5678 755']);
});
