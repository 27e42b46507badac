// Base image resolution (local store first, --pull goes to the registry) and --network none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';
import { build, setup, skip } from './helpers';

test('img build (rootless): a moved tag is used only with --pull; --network none has only lo', { skip, timeout: 180_000 }, async (t) => {
  const { startRegistry } = await import('../fixtures/registry');
  const reg = await startRegistry();
  t.after(() => reg.stop());
  await reg.seed('library/base', 'v1', await makeBusyboxImage({ extraFiles: { 'etc/version': 'one\n' } }));
  const e = await setup({ Dockerfile: `FROM ${reg.host}/library/base:v1\nRUN cat /etc/version > /seen\n` });
  t.after(() => cleanup(e.root));
  const seen = async (args: string[]) => {
    const out = path.join(e.root, `out-${Math.random().toString(36).slice(2)}`);
    const r = await build(e, [...args, '-o', `type=local,dest=${out}`, e.ctx]);
    assert.equal(r.code, 0, r.stderr);
    return fs.readFileSync(path.join(out, 'seen'), 'utf8');
  };
  assert.equal(await seen([]), 'one\n');
  await reg.seed('library/base', 'v1', await makeBusyboxImage({ extraFiles: { 'etc/version': 'two\n' } }));
  assert.equal(await seen([]), 'one\n', 'the local image is used while present (docker --pull=missing)');
  assert.equal(await seen(['--pull']), 'two\n', '--pull resolves the tag at the registry');

  const out = path.join(e.root, 'net');
  const r = await build(e, ['--network', 'none', '-o', `type=local,dest=${out}`, '-'], {
    input: 'FROM busybox\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " > /ifaces\n',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(out, 'ifaces'), 'utf8'), 'lo\n');
});
