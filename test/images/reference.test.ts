import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { familiarName, formatReference, parseReference } from '../../lib/images/reference';
import { ImgError } from '../../lib/util/errors';

const D = 'sha256:' + 'ab'.repeat(32);

// input → [normalized, familiar], after Docker's ParseNormalizedNamed / FamiliarString.
const valid: [string, string, string][] = [
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/library/busybox:latest', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/jess/img', 'docker.io/jess/img:latest', 'jess/img:latest'],
  ['jess/img', 'docker.io/jess/img:latest', 'jess/img:latest'],
  ['jess/img/sub', 'docker.io/jess/img/sub:latest', 'jess/img/sub:latest'],
  ['docker.io/library/a/b', 'docker.io/library/a/b:latest', 'library/a/b:latest'],
  ['localhost/foo', 'localhost/foo:latest', 'localhost/foo:latest'],
  ['localhost:5000/foo/bar:v1', 'localhost:5000/foo/bar:v1', 'localhost:5000/foo/bar:v1'],
  ['127.0.0.1:5000/foo', '127.0.0.1:5000/foo:latest', '127.0.0.1:5000/foo:latest'],
  ['[::1]:5000/foo', '[::1]:5000/foo:latest', '[::1]:5000/foo:latest'],
  ['example.com/a-b/c_d.e__f:T.1-x', 'example.com/a-b/c_d.e__f:T.1-x', 'example.com/a-b/c_d.e__f:T.1-x'],
  ['Example.COM/foo', 'Example.COM/foo:latest', 'Example.COM/foo:latest'],
  [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
  [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
  [`localhost:5000/a/b@${D}`, `localhost:5000/a/b@${D}`, `localhost:5000/a/b@${D}`],
  ['a--b/c', 'docker.io/a--b/c:latest', 'a--b/c:latest'],
];

const invalid: string[] = [
  '',
  'Busybox',
  'docker.io/Library/busybox',
  'busybox:',
  ':latest',
  'busybox:-bad',
  `busybox:${'t'.repeat(129)}`,
  'busybox@sha256:abc',
  `busybox@sha512:${'ab'.repeat(64)}`,
  'a//b',
  'foo_/bar',
  '-foo/bar',
  'ab'.repeat(32),
  'foo bar',
  'localhost:5000/',
  `example.com/${'a'.repeat(250)}`,
];

describe('parseReference', () => {
  for (const [input, full, familiar] of valid) {
    it(`${input} → ${full}`, () => {
      const ref = parseReference(input);
      assert.equal(formatReference(ref), full);
      assert.equal(familiarName(ref), familiar);
      assert.deepEqual(parseReference(full), ref, 'normalized form is a fixed point');
    });
  }
  it('splits fields', () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b:t@${D}`), { domain: 'localhost:5000', path: 'a/b', tag: 't', digest: D });
    assert.deepEqual(parseReference(`x@${D}`), { domain: 'docker.io', path: 'library/x', digest: D });
  });
  for (const input of invalid) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (e: unknown) => e instanceof ImgError && e.message.startsWith(`invalid reference "${input}"`) && !!e.hint,
      );
    });
  }
});
