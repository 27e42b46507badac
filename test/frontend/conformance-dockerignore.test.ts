// Conformance of the .dockerignore matcher with BuildKit's (moby/patternmatcher):
// the behaviours its tests pin down, with our own patterns and paths.
// exact: the path itself matches (MatchesExact); parent: the path or one of its
// parent directories matches (MatchesOrParentMatches — what a build uses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PatternMatcher, matchPattern, parseDockerignore } from '../../lib/frontend/dockerfile/index';

type Kind = 'none' | 'exact' | 'parent';
const single: [string, string, Kind][] = [
  // ** alone, with and without a slash, against files, dirs and "/"
  ['**', 'notes', 'exact'],
  ['**', 'notes/', 'exact'],
  ['**/', 'notes', 'exact'],
  ['**/', 'notes/', 'exact'],
  ['**', '/', 'exact'],
  ['**/', '/', 'exact'],
  ['**', 'lib/notes', 'exact'],
  ['**/', 'lib/notes/', 'exact'],
  ['**/**', 'lib/notes', 'exact'],
  ['**/**', 'lib/notes/', 'exact'],
  // dir/** and **/dir
  ['lib/**', 'lib/notes', 'exact'],
  ['lib/**', 'lib/sub/notes/', 'exact'],
  ['lib/**', 'lib', 'none'],
  ['**/lib', 'lib', 'exact'],
  ['**/lib', 'lib/notes', 'parent'],
  ['**/sub/*', 'lib/sub/notes', 'exact'],
  ['**/sub/*', 'lib/sub/notes/', 'parent'],
  ['**/sub/**', 'lib/sub/deep/notes', 'exact'],
  ['**/x/y', 'x/y', 'exact'],
  ['**/x/y', 'q/r/x/y', 'exact'],
  // ** glued to a name
  ['**notes', 'notes', 'exact'],
  ['**notes', 'a/b/notes', 'exact'],
  ['**/notes*', 'a/b/notes.md', 'exact'],
  ['**/notes*md', 'a/b/notes.md', 'exact'],
  ['**/**/*.md', 'a/b/notes.md', 'exact'],
  ['**/**/*.md', 'notes.md', 'exact'],
  ['**/**/*.mdx', 'a/b/notes.md', 'none'],
  ['d**/*.md', 'd/x.md', 'exact'],
  ['d**/*.md', 'd/e/f/x.md', 'exact'],
  ['d/*.md**', 'd/x.md', 'exact'],
  // * and ? stay inside one path element
  ['d/*.md', 'd/e/x.md', 'none'],
  ['d/*.md', 'd/x.md', 'exact'],
  ['q*', 'q/r', 'parent'],
  ['q*/r', 'qq/r', 'exact'],
  ['q*/r', 'q/s/r', 'none'],
  ['q?r', 'qXr', 'exact'],
  ['q?r', 'qr', 'none'],
  ['q?r', 'q/r', 'none'],
  ['q?r', 'q☃r', 'exact'],
  // classes
  ['x[m-o]y', 'xny', 'exact'],
  ['x[m-o]y', 'xy', 'none'],
  ['x[^m-o]y', 'xay', 'exact'],
  ['x[^m-o]y', 'xny', 'none'],
  ['[\\]z]', ']', 'exact'],
  ['[k\\-]', '-', 'exact'],
  ['[\\-k]', 'j', 'none'],
  ['[α-ω]*', 'λx', 'exact'],
  // characters special in regular expressions are literal
  ['v1.0', 'v1x0', 'none'],
  ['v1.0', 'v1.0', 'exact'],
  ['.*', '.env', 'exact'],
  ['.*', 'env', 'none'],
  ['**/.env', '.env', 'exact'],
  ['**/.env', 'my.env', 'none'],
  ['f(1)+{2}|$', 'f(1)+{2}|$', 'exact'],
  ['out/pkg-1.2.3+build.4.tgz', 'out/pkg-1.2.3+build.4.tgz', 'exact'],
  ['out/*.tgz', 'out/pkg-1.2.3+build.4.tgz', 'exact'],
  // escapes
  ['b\\\\', 'b\\', 'exact'],
  ['b\\*c', 'b*c', 'exact'],
  ['b\\*c', 'bc', 'none'],
];

test('single patterns: exact and parent-directory matching', () => {
  for (const [pattern, path, kind] of single) {
    const pm = new PatternMatcher([pattern]);
    assert.equal(pm.matchesExact(path), kind === 'exact', `exact ${pattern} ${path}`);
    assert.equal(matchPattern(pattern, path), kind === 'exact', `matchPattern ${pattern} ${path}`);
    assert.equal(pm.matches(path), kind !== 'none', `parent ${pattern} ${path}`);
  }
});

test('several patterns: last match wins, exclusions re-include', () => {
  const cases: [string[], string, boolean][] = [
    [['*.ts'], 'main.ts', true],
    [['*.ts', '!main.ts'], 'main.ts', false],
    [['!main.ts', '*.ts'], 'main.ts', true],
    [['src', '!src/keep.ts'], 'src/keep.ts', false],
    [['src/', '!src/keep.ts'], 'src/keep.ts', false],
    [['src/*', '!src/keep.ts'], 'src/keep.ts', false],
    [['**', '!web/static'], 'web/static/app.js', false],
    [['**', '!web/static', 'web/static/app.js'], 'web/static/app.js', true],
    [['**', '!out/*.tgz'], 'out/pkg-1.2.3+build.4.tgz', false],
    [[], 'any/thing', false],
    [['*'], 'file', true],
  ];
  for (const [patterns, path, want] of cases) assert.equal(new PatternMatcher(patterns).matches(path), want, `${patterns} ${path}`);
});

test('filepath.Match syntax errors are rejected when the matcher is built', () => {
  for (const bad of ['[', 'q[', '[^', '[^ab', '[]z]', '[-]', '[k-]', '[-k]', '\\', '[a-b-c]', '!']) {
    assert.throws(() => new PatternMatcher([bad]), Error, bad);
  }
  for (const ok of ['[\\]z]', '[\\-]', 'a\\*b', '*x']) assert.doesNotThrow(() => new PatternMatcher([ok]), ok);
});

test('pattern list cleanup: blanks dropped, spaces trimmed, exclusions noted', () => {
  assert.deepEqual(new PatternMatcher(['docs', 'build', '']).patterns(), ['docs', 'build']);
  assert.equal(new PatternMatcher(['docs', '  !docs/keep.md']).exclusions(), true);
  assert.equal(new PatternMatcher(['docs', '!docs/keep.md  ']).exclusions(), true);
  assert.equal(new PatternMatcher(['docs']).exclusions(), false);
});

test('.dockerignore reading: comments, blanks, leading slash, exclusions', () => {
  assert.deepEqual(parseDockerignore('alpha\n/beta\n/x/y/z\n\nomega\n# remark\n! /neg/abs\n'), ['alpha', 'beta', 'x/y/z', 'omega', '!neg/abs']);
});
