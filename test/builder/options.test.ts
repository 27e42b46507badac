import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddHost, parseBuildContext, parseKeyValues, parseOutput, parseSecret, parseSsh } from '../../lib/builder/options';
import { alignHistory, EMPTY_LAYER_DIFF_ID } from '../../lib/export/image';
import { ImgError } from '../../lib/util/errors';
import { createHash } from 'node:crypto';

test('--output specs: buildx CSV and shorthands', () => {
  assert.deepEqual(parseOutput('type=tar,dest=rootfs.tar', []), { type: 'tar', dest: 'rootfs.tar' });
  assert.deepEqual(parseOutput('type=tar', []), { type: 'tar', dest: undefined });
  assert.deepEqual(parseOutput('-', []), { type: 'tar' });
  assert.deepEqual(parseOutput('out/', []), { type: 'local', dest: 'out/' });
  assert.deepEqual(parseOutput('type=local,dest=dir', []), { type: 'local', dest: 'dir' });
  assert.deepEqual(parseOutput('type=docker,dest=i.tar', ['a:1']), { type: 'docker', dest: 'i.tar', names: ['a:1'] });
  assert.deepEqual(parseOutput('type=image,"name=a,b"', []), { type: 'image', names: ['a', 'b'] });
  assert.throws(() => parseOutput('type=registry,name=x', []), /not supported yet/);
  assert.throws(() => parseOutput('type=local', []), ImgError);
  assert.throws(() => parseOutput('type=nope', []), /unknown --output type "nope"/);
});

test('--secret, --ssh, --add-host, --build-context, --build-arg', () => {
  assert.deepEqual(parseSecret('id=tok,src=/run/tok'), { id: 'tok', src: '/run/tok' });
  assert.deepEqual(parseSecret('id=TOKEN'), { id: 'TOKEN', env: 'TOKEN' });
  assert.deepEqual(parseSecret('id=a,env=B'), { id: 'a', env: 'B' });
  assert.throws(() => parseSecret('src=x'), /has no id/);
  assert.deepEqual(parseSsh('default'), { id: 'default', paths: [] });
  assert.deepEqual(parseSsh('gh=/tmp/agent.sock'), { id: 'gh', paths: ['/tmp/agent.sock'] });
  assert.deepEqual(parseAddHost('db:10.0.0.2'), { host: 'db', ip: '10.0.0.2' });
  assert.deepEqual(parseAddHost('v6=::1'), { host: 'v6', ip: '::1' });
  assert.deepEqual(parseBuildContext('lib=../lib'), { name: 'lib', kind: 'local', path: '../lib' });
  assert.deepEqual(parseBuildContext('base=docker-image://alpine:3'), { name: 'base', kind: 'image', ref: 'alpine:3' });
  assert.deepEqual(parseKeyValues(['A=1', 'B', 'C=x=y'], '--build-arg', { B: 'fromenv' }), { A: '1', B: 'fromenv', C: 'x=y' });
  assert.deepEqual(parseKeyValues(['UNSET'], '--build-arg', {}), {});
});

test('history aligns with layers: base entries prepended, surplus entries empty; a no-op step keeps its layer (BuildKit 0.11+)', () => {
  assert.equal(EMPTY_LAYER_DIFF_ID, `sha256:${createHash('sha256').update(Buffer.alloc(1024)).digest('hex')}`);
  // Three layers: the base's (no history entry), RUN true (changed nothing), RUN make.
  const history = alignHistory(
    [{ created_by: 'RUN true' }, { created_by: 'ENV A=1', empty_layer: true }, { created_by: 'RUN make' }],
    3,
    '2024-01-01T00:00:00Z',
  );
  assert.deepEqual(
    history.map((h) => [h.created_by, Boolean(h.empty_layer)]),
    [
      ['', false],
      ['RUN true', false],
      ['ENV A=1', true],
      ['RUN make', false],
    ],
  );
  assert.ok(history.every((h) => h.created === '2024-01-01T00:00:00Z'));
  // More non-empty entries than layers: the first ones become empty.
  assert.deepEqual(
    alignHistory([{ created_by: 'a' }, { created_by: 'b' }], 1, undefined).map((h) => [h.created_by, Boolean(h.empty_layer)]),
    [
      ['a', true],
      ['b', false],
    ],
  );
});
