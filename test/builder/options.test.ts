import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddHost, parseBuildContext, parseKeyValues, parseOutput, parseSecret, parseSsh, withPush } from '../../lib/builder/options';
import { alignHistory, EMPTY_LAYER_DIFF_ID } from '../../lib/export/image';
import { ImgError, UsageError } from '../../lib/util/errors';
import { createHash } from 'node:crypto';

test('--output specs: buildx CSV and shorthands', () => {
  assert.deepEqual(parseOutput('type=tar,dest=rootfs.tar', []), { type: 'tar', dest: 'rootfs.tar' });
  assert.deepEqual(parseOutput('type=tar', []), { type: 'tar', dest: undefined });
  assert.deepEqual(parseOutput('-', []), { type: 'tar' });
  assert.deepEqual(parseOutput('out/', []), { type: 'local', dest: 'out/' });
  assert.deepEqual(parseOutput('type=local,dest=dir', []), { type: 'local', dest: 'dir' });
  assert.deepEqual(parseOutput('type=local,dest=dir,platform-split=false', []), { type: 'local', dest: 'dir', platformSplit: false });
  assert.deepEqual(parseOutput('type=tar,dest=a.tar,platform-split=true', []), { type: 'tar', dest: 'a.tar', platformSplit: true });
  // BuildKit's docker exporter: oci-mediatypes=false unless set (or zstd).
  assert.deepEqual(parseOutput('type=docker,dest=i.tar', ['a:1']), { type: 'docker', dest: 'i.tar', names: ['a:1'], format: { ociMediaTypes: false } });
  assert.deepEqual((parseOutput('type=docker,dest=i.tar,compression=zstd', []) as { format: object }).format, { compression: 'zstd' });
  assert.deepEqual(parseOutput('type=oci,dest=dir,tar=false', []), { type: 'oci', dest: 'dir', names: [], format: {}, layoutDir: true });
  assert.deepEqual(parseOutput('type=image,"name=a,b"', []), { type: 'image', names: ['a', 'b'], push: false, store: true, format: {} });
  assert.throws(() => parseOutput('type=local', []), ImgError);
  assert.throws(() => parseOutput('type=nope', []), /unknown --output type "nope"/);
});

test('--output push and image format options; an option img does not know is an error naming it', () => {
  assert.deepEqual(parseOutput('type=registry,name=r.io/a:1', []), { type: 'image', names: ['r.io/a:1'], push: true, store: false, format: {} });
  assert.deepEqual(parseOutput('type=image,push=true,registry.insecure=true', ['h:5000/x']), {
    type: 'image', names: ['h:5000/x'], push: true, store: true, insecure: true, format: {},
  });
  assert.deepEqual(parseOutput('type=image,compression=zstd,compression-level=9,force-compression=true,oci-mediatypes=true', []).type, 'image');
  assert.deepEqual((parseOutput('type=oci,dest=o.tar,compression=uncompressed', []) as { format: object }).format, { compression: 'none' });
  assert.deepEqual((parseOutput('type=docker,oci-mediatypes=false,compression-level=6', []) as { format: object }).format, { ociMediaTypes: false, compressionLevel: 6 });
  assert.deepEqual((parseOutput('type=image,compression=zstd,compression-level=19,force-compression=1', []) as { format: object }).format, {
    compression: 'zstd', compressionLevel: 19, forceCompression: true,
  });
  // --push is buildx's type=registry; with an image output it sets push on it.
  assert.deepEqual(withPush([], true, ['r/a']), [{ type: 'image', names: ['r/a'], push: true, store: false, format: {} }]);
  assert.equal((withPush([parseOutput('type=image,name=r/b', [])], true, []) [0] as { push: boolean }).push, true);
  const rejects: [string, RegExp][] = [
    ['type=image,compression=zstd,foo=1', /does not support the option "foo"/],
    ['type=image,unpack=true', /does not support the option "unpack"/],
    ['type=tar,dest=x,annotation.a=b', /type=tar does not support the option "annotation.a"/],
    ['type=oci,dest=x,annotation-nope.a=b', /unrecognized annotation type nope/],
    ['type=oci,dest=x,annotation-manifest[linux/amd64]a=b', /could not fully parse annotation/],
    ['type=tar,compression=zstd', /type=tar does not support the option "compression"/],
    ['type=local,dest=d,bogus=true', /does not support the option "bogus"/],
    ['type=image,compression=brotli', /compression=brotli is not a compression/],
    ['type=image,compression=estargz', /estargz is not supported/],
    ['type=image,compression=zstd,compression-level=22', /compression-level=22 is out of range for zstd/],
    ['type=image,compression-level=10', /compression-level=10 is out of range for gzip/],
    ['type=image,compression=uncompressed,compression-level=1', /no meaning with compression=uncompressed/],
    ['type=docker,compression=zstd,oci-mediatypes=false', /cannot be written with oci-mediatypes=false/],
    ['type=image,push=maybe,name=x', /push=maybe is not a boolean/],
    ['type=image,push=true', /needs a name to push to/],
    ['type=registry', /needs a name to push to/],
    ['type=registry,name=x,push=false', /always pushes/],
    ['type=oci,tar=false', /tar=false needs dest=DIR/],
  ];
  // annotation options of image outputs (BuildKit's keys; no type is a manifest annotation).
  assert.deepEqual((parseOutput('type=oci,dest=x,annotation.a=b,annotation-index.c=d,annotation-manifest[linux/arm64].e=f', []) as { format: object }).format, {
    annotations: [
      { type: 'manifest', key: 'a', value: 'b' },
      { type: 'index', key: 'c', value: 'd' },
      { type: 'manifest', platform: 'linux/arm64', key: 'e', value: 'f' },
    ],
  });
  for (const [spec, why] of rejects) assert.throws(() => parseOutput(spec, []), (err: Error) => err instanceof ImgError && why.test(err.message), spec);
  assert.throws(() => withPush([parseOutput('type=tar,dest=x', [])], true, ['r/a']), /--push cannot push an --output type=tar/);
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
  assert.deepEqual(parseKeyValues(['novalue', 'k=v'], '--label', { novalue: 'ignored' }), { novalue: '', k: 'v' });
  assert.throws(() => parseKeyValues(['=x'], '--label'), (err: Error) => err instanceof UsageError && /invalid --label "=x": the name before "=" is empty/.test(err.message));
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
