// The one glob module (lib/util/glob.ts): Go filepath.Match syntax, its options
// for the places img matches (paths, whole strings, shell patterns, '**'), its
// errors, and the automaton's prefix and leftmost-longest searches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, hasWildcards, matchGlob, type GlobOptions } from '../../lib/util/glob';
import { BadPatternError, UsageError } from '../../lib/util/errors';

test('path globs: filepath.Match rules (* and ? stay in a path element, classes, escapes)', () => {
  const yes: [string, string][] = [
    ['notes.txt', 'notes.txt'], ['*', 'notes.txt'], ['*.txt', '.txt'], ['n*', 'n'], ['n*/x', 'nope/x'],
    ['n*o*e*s', 'nxoxexs'], ['v?.?', 'v1.2'], ['v[0-9]', 'v7'], ['v[^0-9]', 'vx'], ['v[^0-9]', 'v/'], // a class may match '/'
    ['[αβγ]x', 'βx'], ['[α-ω]', 'λ'], ['?', '☃'], ['??', '😀x'], // characters, not UTF-16 units
    ['[!x]', '!'], ['[!x]', 'x'], // '!' is an ordinary member, as in Go and BuildKit
    ['a\\*', 'a*'], ['a\\[b]', 'a[b]'], ['[\\]]', ']'], ['[\\-a]', '-'], ['[a\\-]', 'a'], ['\\\\', '\\'],
    ['**', 'ab'], // without doubleStar, ** is * twice
  ];
  const no: [string, string][] = [
    ['n*', 'n/x'], ['*', 'a/b'], ['v?', 'v/'], ['v?', 'v'], ['v[0-9]', 'vx'], ['v[^0-9]', 'v7'],
    ['[!x]', 'y'], ['[!x]', 'z'], ['a\\*', 'ab'], ['**', 'a/b'], ['??', '😀'], ['notes', 'notes.txt'],
  ];
  for (const [p, s] of yes) assert.equal(matchGlob(p, s), true, `${p} ~ ${s}`);
  for (const [p, s] of no) assert.equal(matchGlob(p, s), false, `${p} !~ ${s}`);
});

test('malformed patterns: BadPatternError naming the pattern, the fault and the fix', () => {
  const bad: [string, string][] = [
    ['[', '"[" without a closing "]"'],
    ['x[^', '"[" without a closing "]"'],
    ['x[ab', '"[" without a closing "]"'],
    ['[a\\', '"[" without a closing "]"'],
    ['[]x]', 'empty character class'],
    ['[^]', 'empty character class'],
    ['[-x]', 'unescaped "-" in a character class'],
    ['[a-b-c]', 'unescaped "-" in a character class'],
    ['[x-]', 'range "x-" has no upper end'],
    ['[9-0]', 'reversed range "9-0" in a character class'],
    ['x\\', 'a trailing "\\" escapes nothing'],
  ];
  for (const [p, reason] of bad) {
    assert.throws(
      () => compileGlob(p),
      (e: unknown) => {
        assert.ok(e instanceof BadPatternError && e instanceof UsageError, String(e));
        assert.equal(e.code, 'IMG_ERR_BAD_PATTERN');
        assert.equal(e.message, `syntax error in pattern ${JSON.stringify(p)}: ${reason}`);
        assert.deepEqual([e.pattern, e.reason], [p, reason]);
        assert.match(e.hint ?? '', /filepath\.Match/);
        return true;
      },
      p,
    );
  }
  // the same text is fine where classes do not exist
  for (const p of ['[', '[]x]', '[9-0]']) assert.equal(matchGlob(p, p, { classes: false }), true, p);
});

test('separator option: "/" for paths, "\\n" for shell patterns, "" for whole strings', () => {
  const cases: [GlobOptions, string, string, boolean][] = [
    [{ separator: '/' }, 'a*', 'a/b', false],
    [{ separator: '' }, 'a*', 'a/b', true],
    [{ separator: '' }, '?', '/', true],
    [{ separator: '' }, 'a*', 'a\nb', true],
    [{ separator: '\n' }, 'a*', 'a/b', true],
    [{ separator: '\n' }, 'a*', 'a\nb', false],
    [{ separator: '\n' }, 'a?b', 'a\nb', false],
    [{ separator: '\n', classes: false }, '[ab]', '[ab]', true],
    [{ separator: '\n', classes: false }, '[ab]', 'a', false],
  ];
  for (const [opts, p, s, want] of cases) assert.equal(matchGlob(p, s, opts), want, `${JSON.stringify(opts)} ${p} ${JSON.stringify(s)}`);
});

test('doubleStar: ** spans directories as moby/patternmatcher reads .dockerignore', () => {
  const ds = { doubleStar: true };
  const cases: [string, string, boolean][] = [
    ['**/x', 'x', true], ['**/x', 'a/b/x', true], ['a/**/x', 'a/x', true], ['a/**/x', 'a/b/c/x', true],
    ['a/**/x', 'ab/x', false], ['a**x', 'ab/x', true], ['a**x', 'abx', false], // ** is "" or text ending in '/'
    ['a/**', 'a/b/c', true], ['a/**', 'a', false],
    ['**/*.log', 'x/y.log', true], ['**/*.log', 'x/y/z.txt', false],
    ['**.log', 'xa.log', true], // the suffix shortcut: literal text after a leading ** is a suffix test
    ['a/**/b**', 'a/q/bz/y', true], ['a/**/b**', 'a/q\n/b', false], // ** is Go's '.*': it stops at a newline
    ['a/*', 'a/b\nc', true], // * is [^/]*: a newline is just a character
  ];
  for (const [p, s, want] of cases) assert.equal(matchGlob(p, s, ds), want, `${p} ${JSON.stringify(s)}`);
  // the path or one of its parent directories
  const g = compileGlob('src/*/gen', ds);
  assert.equal(g.matchesPathOrParent('src/a/gen/x/y.go'), true);
  assert.equal(g.matchesPathOrParent('src/a/genx/y.go'), false);
  assert.equal(g.source, 'src/*/gen');
});

test('automaton searches: shortest/longest prefix and leftmost-longest match, on code points', () => {
  const cps = (s: string) => [...s].map((c) => c.codePointAt(0)!);
  const g = compileGlob('a*b', { separator: '\n' });
  assert.equal(g.matchPrefix(cps('axbxbz'), false), 3);
  assert.equal(g.matchPrefix(cps('axbxbz'), true), 5);
  assert.equal(g.matchPrefix(cps('xab'), true), -1);
  assert.equal(g.matchPrefix(cps('ab\nab'), true), 2); // * stops at the separator
  assert.equal(compileGlob('*').matchPrefix(cps('abc'), false), 0);
  assert.deepEqual(g.find(cps('zzaxbxbz')), [2, 7]); // leftmost, then longest
  assert.deepEqual(g.find(cps('zzaxbxbz'), 3), undefined);
  assert.deepEqual(compileGlob('b?').find(cps('ab😀b')), [1, 3]);
  assert.deepEqual(compileGlob('x*').find(cps('abc')), undefined);
  assert.deepEqual(compileGlob('*').find(cps('abc'), 3), [3, 3]); // an empty match at the end
  // a later-starting attempt that ends earlier loses to an earlier one that ends later
  assert.deepEqual(compileGlob('a*c').find(cps('xabcac')), [1, 6]);
  // an attempt that started earlier wins even when a later one matched first
  assert.deepEqual(compileGlob('a?????|', { separator: '' }).find(cps('abcdef|')), [0, 7]);
});

test('linear time on hostile patterns and long inputs', () => {
  const long = 'a'.repeat(20_000);
  const cps = [...long].map((c) => c.codePointAt(0)!);
  const hostile = compileGlob('*a*a*a*a*a*a*a*a*a*a*a*a*b', { separator: '\n' });
  assert.equal(hostile.matches(long), false);
  assert.equal(hostile.matchPrefix(cps, true), -1);
  assert.equal(hostile.find(cps), undefined);
  assert.deepEqual(compileGlob('a*a*a*a', { separator: '\n' }).find(cps), [0, 20_000]);
});

test('hasWildcards: an unescaped * ? or [ (Go rule BuildKit uses for COPY sources)', () => {
  for (const s of ['*.go', 'a?', 'x[ab]', 'a/b/*', '\\\\*']) assert.equal(hasWildcards(s), true, s);
  for (const s of ['main.go', 'a\\*', 'dir/sub/', 'x\\[ab]', '']) assert.equal(hasWildcards(s), false, s);
});
