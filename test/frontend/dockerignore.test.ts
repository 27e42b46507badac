// .dockerignore: Go filepath.Match rules plus **, ! exceptions (last match
// wins), parent-directory matching, cleaning, as the Dockerfile reference documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerignore, PatternMatcher, dockerignoreFileFor, DockerfileError } from '../../lib/frontend/dockerfile/index';

test('parse: comments in column 1, blank lines, trimming, cleaning', () => {
  const text = [
    '# a comment',
    '',
    '   ',
    '  *.log  ',
    '/abs/path',
    './rel/dir/',
    'a//b/./c/../d',
    '/../outside',
    '!  /keep.log',
    '  # not a comment (not in column 1)',
    'trailing\r',
    '.',
    '/',
  ].join('\n');
  assert.deepEqual(parseDockerignore(text), [
    '*.log',
    'abs/path',
    'rel/dir',
    'a/b/d',
    'outside',
    '!keep.log',
    '# not a comment (not in column 1)',
    'trailing',
    '.',
    '/',
  ]);
});

test('parse: BOM and CRLF', () => {
  assert.deepEqual(parseDockerignore('\ufeffnode_modules\r\n!node_modules/keep\r\n'), ['node_modules', '!node_modules/keep']);
});

test('parse errors: a lone "!" and malformed patterns, with the line', () => {
  for (const [text, line, reason] of [
    ['a\n!\n', 2, 'illegal exclusion pattern: "!"'],
    ['a\n\n  !   \n', 3, 'illegal exclusion pattern: "!"'],
    ['[abc', 1, 'syntax error in pattern "[abc": "[" without a closing "]"'],
    ['x\ny\\', 2, 'syntax error in pattern "y\\\\": a trailing "\\" escapes nothing'],
    ['[]', 1, 'syntax error in pattern "[]": empty character class'],
    ['[a-]', 1, 'syntax error in pattern "[a-]": range "a-" has no upper end'],
    ['[-a]', 1, 'syntax error in pattern "[-a]": unescaped "-" in a character class'],
    ['[z-a]', 1, 'syntax error in pattern "[z-a]": reversed range "z-a" in a character class'],
  ] as const) {
    assert.throws(
      () => parseDockerignore(text),
      (e: unknown) => {
        assert.ok(e instanceof DockerfileError, String(e));
        assert.deepEqual([e.line, e.reason, e.file], [line, reason, '.dockerignore']);
        assert.ok(e.hint);
        return true;
      },
      text,
    );
  }
  assert.throws(() => new PatternMatcher(['a', '!']), /illegal exclusion pattern: "!"/);
  assert.throws(() => new PatternMatcher(['[']), /syntax error in pattern/);
});

// [patterns, path, excluded?]
const cases: [string[], string, boolean][] = [
  // literal names match the path and everything below it
  [['dir'], 'dir', true],
  [['dir'], 'dir/file', true],
  [['dir'], 'dir/sub/file', true],
  [['dir'], 'dirx', false],
  [['dir'], 'other/dir', false],
  [['dir/file'], 'dir/file', true],
  [['dir/file'], 'dir', false],
  [['/dir'], 'dir/x', true],
  [['./dir/'], 'dir/x', true],
  // * and ? do not cross /
  [['*.go'], 'main.go', true],
  [['*.go'], 'cmd/main.go', false],
  [['*/*.go'], 'cmd/main.go', true],
  [['*/*.go'], 'a/b/main.go', false],
  [['*'], 'anything/below', true],
  [['?'], 'a', true],
  [['?'], 'ab', false],
  [['a?c'], 'a/c', false],
  [['temp?'], 'temp1/x', true],
  [['*/temp*'], 'somedir/temporary.txt', true],
  [['*/*/temp*'], 'somedir/subdir/temporary.txt', true],
  [['*/temp*'], 'temporary.txt', false],
  // classes
  [['[a-c]x'], 'bx', true],
  [['[a-c]x'], 'dx', false],
  [['[^a-c]x'], 'dx', true],
  [['[^a-c]x'], 'ax', false],
  [['[\\]]'], ']', true],
  [['[*]'], '*', true],
  [['[*]'], 'a', false],
  // escapes
  [['foo\\*'], 'foo*', true],
  [['foo\\*'], 'foobar', false],
  [['\\[x\\]'], '[x]', true],
  // ** any number of directories, including none
  [['**/*.go'], 'main.go', true],
  [['**/*.go'], 'a/b/c/main.go', true],
  [['**/*.go'], 'main.gox', false],
  [['**'], 'a', true],
  [['**'], 'a/b/c', true],
  [['**/node_modules'], 'node_modules', true],
  [['**/node_modules'], 'x/y/node_modules/z', true],
  [['a/**'], 'a/b', true],
  [['a/**'], 'a/b/c', true],
  [['a/**'], 'a', false],
  [['a/**/b'], 'a/b', true],
  [['a/**/b'], 'a/x/y/b', true],
  [['a/**/b'], 'a/x/y/bc', false],
  [['a/**/*.txt'], 'a/x/f.txt', true],
  [['**/a/**'], 'x/a/y', true],
  // ! exceptions: the last matching pattern wins
  [['*.md', '!README.md'], 'README.md', false],
  [['*.md', '!README.md'], 'CHANGES.md', true],
  [['*.md', '!README*.md', 'README-secret.md'], 'README-secret.md', true],
  [['*.md', '!README*.md', 'README-secret.md'], 'README-public.md', false],
  [['!keep', '*'], 'keep', true],
  [['docs', '!docs/keep.txt'], 'docs/keep.txt', false],
  [['docs', '!docs/keep.txt'], 'docs/other.txt', true],
  [['docs', '!docs'], 'docs/x', false],
  [['!x'], 'x', false],
  // the context root and paths given with a leading ./ or /
  [['a'], './a/b', true],
  [['a'], '/a/b', true],
  [['.git'], '.git/HEAD', true],
  [['.*'], '.env', true],
  [['.*'], 'dir/.env', false],
  // non-ASCII
  [['日本/*'], '日本/語', true],
  [['?'], '語', true],
];
for (const [patterns, path, want] of cases) {
  test(`match ${JSON.stringify(patterns)} ${path} → ${want}`, () => {
    assert.equal(new PatternMatcher(patterns).matches(path), want);
  });
}

test('exclusions() reports ! patterns', () => {
  assert.equal(new PatternMatcher(['a', 'b']).exclusions(), false);
  assert.equal(new PatternMatcher(['a', '!b']).exclusions(), true);
});

test('parsed lines feed the matcher', () => {
  const m = new PatternMatcher(parseDockerignore('# build output\n/dist\n*.log\n!important.log\n'));
  assert.deepEqual(
    ['dist/a.js', 'x.log', 'important.log', 'src/x.log', 'src/a.ts'].map((p) => m.matches(p)),
    [true, true, false, false, false],
  );
});

test('Dockerfile-specific ignore file takes precedence', () => {
  assert.deepEqual(dockerignoreFileFor('Dockerfile'), ['Dockerfile.dockerignore', '.dockerignore']);
  assert.deepEqual(dockerignoreFileFor('build/app.Dockerfile'), ['build/app.Dockerfile.dockerignore', '.dockerignore']);
});

test('pathological patterns finish (linear-time matching)', () => {
  const long = 'a'.repeat(4000);
  assert.equal(new PatternMatcher(['*a*a*a*a*a*a*a*a*a*a*a*a*b']).matches(long), false);
  const deep = Array.from({ length: 200 }, (_, i) => `d${i}`).join('/') + '/x';
  assert.equal(new PatternMatcher(['**/**/**/**/**/**/**/**/**/**/y']).matches(deep), false);
  assert.equal(new PatternMatcher(['**/**/**/**/**/**/**/**/**/**/x']).matches(deep), true);
  assert.equal(new PatternMatcher(['d0/**/*9/**/x']).matches(deep), true);
});

test('matchPattern: one pattern, one path, filepath.Match rules plus **', async () => {
  const { matchPattern } = await import('../../lib/frontend/dockerfile/index');
  const yes: [string, string][] = [
    ['abc', 'abc'], ['*', 'abc'], ['*c', 'abc'], ['a*', 'a'], ['a*/b', 'abc/b'], ['a*b?c*x', 'abxbbxdbxebxczzx'],
    ['ab[b-d]', 'abc'], ['ab[^e-g]', 'abc'], ['a\\*b', 'a*b'], ['a?b', 'a☺b'], ['a[^a]b', 'a☺b'], ['[a-ζ]*', 'α'],
    ['[\\]a]', ']'], ['[\\-]', '-'], ['[x\\-]', '-'], ['[\\-x]', 'x'], ['*x', 'xxx'], ['a\\\\', 'a\\'],
    ['**', 'dir/file'], ['**/dir', 'dir'], ['**file', 'dir/dir/file'], ['**/file*.txt*', 'dir/dir/file.txt'],
    ['a**/*.txt', 'a/dir/dir/file.txt'], ['a/*.txt**', 'a/file.txt'], ['.*', '.foo'], ['a(b)c/def', 'a(b)c/def'],
    ['a.|)$(}+{bc', 'a.|)$(}+{bc'], ['dist/*.whl', 'dist/p-2.4.0rc3.dev36+g08acad9-py3-none-any.whl'],
  ];
  const no: [string, string][] = [
    ['a*', 'ab/c'], ['a*/b', 'a/c/b'], ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f'], ['ab[e-g]', 'abc'], ['ab[^c]', 'abc'],
    ['a\\*b', 'ab'], ['a???b', 'a☺b'], ['*[a-ζ]', 'A'], ['a?b', 'a/b'], ['a*b', 'a/b'], ['[x\\-]', 'z'],
    ['**/**/*.txt2', 'dir/dir/file.txt'], ['a/*.txt', 'a/dir/file.txt'], ['abc.def', 'abcZdef'], ['abc/**', 'abc'],
    ['**/.foo', 'bar.foo'], ['a[b-d]e', 'aae'], ['abc?def', 'abcdef'],
  ];
  for (const [p, s] of yes) assert.equal(matchPattern(p, s), true, `${p} ${s}`);
  for (const [p, s] of no) assert.equal(matchPattern(p, s), false, `${p} ${s}`);
  for (const bad of ['[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[']) {
    assert.throws(() => matchPattern(bad, 'a'), /syntax error in pattern/, bad);
  }
});

test('.dockerignore matching agrees with a regular-expression oracle on random patterns', async () => {
  const { matchPattern } = await import('../../lib/frontend/dockerfile/index');
  let seed = 777;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const PAT = ['*', '**', '**/', '?', 'a', 'b', '/', '[ab]', '[^a]', '\\*', '.'];
  const STR = ['a', 'b', '/', '.', '*'];
  // The documented semantics: * and ? within a path element, **/ any number of
  // directories (even none), a trailing ** anything, classes may match '/'.
  const oracle = (p: string): RegExp => {
    let re = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === '*' && p[i + 1] === '*') {
        i++;
        if (p[i + 1] === '/') i++;
        re += i + 1 >= p.length ? '.*' : '(.*/)?';
      } else if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else if (c === '\\') re += '\\' + p[++i];
      else if (c === '[') {
        const end = p.indexOf(']', i + 2);
        re += p.slice(i, end + 1);
        i = end;
      } else re += c.replace(/[.\/]/g, '\\$&');
    }
    return new RegExp(`^${re}$`);
  };
  let compared = 0;
  for (let k = 0; k < 3000; k++) {
    let p = '';
    for (let j = rnd(5); j >= 0; j--) p += PAT[rnd(PAT.length)];
    // compare on cleaned patterns only (cleaning is tested elsewhere); leading ** uses
    // BuildKit's suffix shortcut, which differs from the regexp on purpose
    if (p.includes('//') || p.startsWith('/') || p.endsWith('/') || p.startsWith('**') || /(^|\/)\.\.?(\/|$)/.test(p)) continue;
    let s = '';
    for (let j = 1 + rnd(7); j > 0; j--) s += STR[rnd(STR.length)];
    compared++;
    assert.equal(matchPattern(p, s), oracle(p).test(s), `${p} vs ${s}`);
  }
  assert.ok(compared > 1000, `compared ${compared}`);
});
