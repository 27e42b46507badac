// Shell word expansion: BuildKit's lexer semantics as documented in the
// Dockerfile reference ("Environment replacement") plus its corner cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, expandWords, ShellExpansionError } from '../../lib/frontend/dockerfile/index';

const env = new Map<string, string>([
  ['hi', 'hi'],
  ['space', 'abc  def'],
  ['leading', '  ab c'],
  ['trailing', 'ab c   '],
  ['file', 'foo.tar.gz'],
  ['path', '/usr/local/bin'],
  ['empty', ''],
  ['dollar', '$hi'],
]);

// [input, expandWord value, expandWords words]
const cases: [string, string, string[]][] = [
  ['hello', 'hello', ['hello']],
  ['$hi', 'hi', ['hi']],
  ['${hi}', 'hi', ['hi']],
  ['hello${hi}bye', 'hellohibye', ['hellohibye']],
  ['$hi$hi', 'hihi', ['hihi']],
  ['$unset', '', []],
  ['a${unset}b', 'ab', ['ab']],
  // word splitting: unquoted expansions split, quoted ones do not
  ['hello${space}bye', 'helloabc  defbye', ['helloabc', 'defbye']],
  ['hello"${space}"bye', 'helloabc  defbye', ['helloabc  defbye']],
  ['hello "${space}"bye', 'hello abc  defbye', ['hello', 'abc  defbye']],
  ['hello${leading}def', 'hello  ab cdef', ['hello', 'ab', 'cdef']],
  ['hello"${leading}" def', 'hello  ab c def', ['hello  ab c', 'def']],
  ['hello${trailing}d', 'helloab c   d', ['helloab', 'c', 'd']],
  ['a   b', 'a   b', ['a', 'b']],
  ['  a  ', '  a  ', ['a']],
  // quotes
  ["'$hi'", '$hi', ['$hi']],
  ["'a b'c", 'a bc', ['a bc']],
  ['"$hi"', 'hi', ['hi']],
  ['"a \'b\' c"', "a 'b' c", ["a 'b' c"]],
  ["'a \"b\" c'", 'a "b" c', ['a "b" c']],
  ['hello" there  "', 'hello there  ', ['hello there  ']],
  // escapes: outside quotes anything; inside double quotes only $ " and the escape char
  ['\\$hi', '$hi', ['$hi']],
  ['\\${hi}', '${hi}', ['${hi}']],
  ['hello\\ there', 'hello there', ['hello there']],
  ['hello\\" there', 'hello" there', ['hello"', 'there']],
  ['"a\\"b"', 'a"b', ['a"b']],
  ['"\\$hi"', '$hi', ['$hi']],
  ['"a\\\\b"', 'a\\b', ['a\\b']],
  ['"a\\b"', 'a\\b', ['a\\b']],
  ["'a\\\\b'", 'a\\\\b', ['a\\\\b']],
  ["'a\\b'", 'a\\b', ['a\\b']],
  ['a\\', 'a', ['a']], // a trailing escape is dropped
  ['\\\\', '\\', ['\\']],
  // quoted empty strings vanish in word splitting, as in BuildKit
  ['""', '', []],
  ["''", '', []],
  ['"" a', ' a', ['a']],
  // $ that is not a reference stays literal
  ['$', '$', ['$']],
  ['a$', 'a$', ['a$']],
  ['$.x', '$.x', ['$.x']],
  ['$/', '$/', ['$/']],
  ['$ a', '$ a', ['$', 'a']],
  // positional and special parameters are looked up by name (normally unset)
  ['$1', '', []],
  ['$12x', 'x', ['x']],
  ['$@', '', []],
  ['$*x', 'x', ['x']],
  ['${1}', '', []],
  // values are not re-expanded
  ['$dollar', '$hi', ['$hi']],
  // modifiers
  ['${hi:-x}', 'hi', ['hi']],
  ['${unset:-x}', 'x', ['x']],
  ['${empty:-x}', 'x', ['x']],
  ['${empty-x}', '', []],
  ['${unset-x}', 'x', ['x']],
  ['${unset:-a b}', 'a b', ['a', 'b']],
  ['${unset:-$hi}', 'hi', ['hi']],
  ['${unset:-${hi}-${hi}}', 'hi-hi', ['hi-hi']],
  ['${unset:-\\}}', '}', ['}']],
  ['${hi:+x}', 'x', ['x']],
  ['${empty:+x}', '', []],
  ['${empty+x}', 'x', ['x']],
  ['${unset+x}', '', []],
  ['${hi:?boom}', 'hi', ['hi']],
  ['${empty?boom}', '', []],
  // pattern trimming (* and ? globs, both cross /; no bracket expressions, as in BuildKit)
  ['${file%.*}', 'foo.tar', ['foo.tar']],
  ['${file%%.*}', 'foo', ['foo']],
  ['${file#*.}', 'tar.gz', ['tar.gz']],
  ['${file##*.}', 'gz', ['gz']],
  ['${file#nomatch}', 'foo.tar.gz', ['foo.tar.gz']],
  ['${file#}', 'foo.tar.gz', ['foo.tar.gz']],
  ['${path##*/}', 'bin', ['bin']],
  ['${path%/*}', '/usr/local', ['/usr/local']],
  ['${file#f?o}', '.tar.gz', ['.tar.gz']],
  ['${file%[a-z][a-z]}', 'foo.tar.gz', ['foo.tar.gz']], // '[' is a literal character
  ['${file%\\*.gz}', 'foo.tar.gz', ['foo.tar.gz']], // an escaped star is literal
  ['${file%.g?}', 'foo.tar', ['foo.tar']],
  ['${unset#x}', '', []],
  // replacement
  ['${file/o/0}', 'f0o.tar.gz', ['f0o.tar.gz']],
  ['${file//o/0}', 'f00.tar.gz', ['f00.tar.gz']],
  ['${file/.*/}', 'foo', ['foo']],
  ['${path//\\//:}', ':usr:local:bin', [':usr:local:bin']],
  ['${file/x/y}', 'foo.tar.gz', ['foo.tar.gz']],
  ['${file/o/$hi}', 'fhio.tar.gz', ['fhio.tar.gz']],
  ['${file/o/$&}', 'f$&o.tar.gz', ['f$&o.tar.gz']], // replacement is literal text
  // non-ASCII names and values
  ['${héllo:-x}', 'x', ['x']],
  ['日本$hi', '日本hi', ['日本hi']],
];

for (const [input, value, words] of cases) {
  test(`expand ${JSON.stringify(input)}`, () => {
    assert.equal(expandWord(input, env).value, value);
    assert.deepEqual(expandWords(input, env).words, words);
  });
}

const errors: [string, string][] = [
  ['${', "syntax error: missing '}'"],
  ['${hi', "syntax error: missing '}'"],
  ['${hi:-x', "syntax error: missing '}'"],
  ['${}', 'syntax error: bad substitution'],
  ['${:}', 'syntax error: bad substitution'],
  ['${{hi}}', 'syntax error: bad substitution'],
  ['${hi=x}', 'unsupported modifier (=) in substitution'],
  ['${hi:=x}', 'unsupported modifier (:=) in substitution'],
  ['${hi:/x/y}', 'unsupported modifier (:/) in substitution'],
  // ':' with # or % (BuildKit names ':' and the next character only)
  ['${hi:#}', 'unsupported modifier (:#) in substitution'],
  ['${hi:##}', 'unsupported modifier (:#) in substitution'],
  ['${hi:%}', 'unsupported modifier (:%) in substitution'],
  ['${hi:%%}', 'unsupported modifier (:%) in substitution'],
  ['${file:##*.}', 'unsupported modifier (:#) in substitution'],
  ['${unset:%.gz}', 'unsupported modifier (:%) in substitution'],
  ['${hi:#', 'unsupported modifier (:#) in substitution'], // rejected before the missing '}' is seen
  ['${file%\\.gz}', "invalid pattern (zg\\.) in substitution: invalid escape '\\.'"], // % shows the pattern reversed
  ['${file#\\x}', "invalid pattern (\\x) in substitution: invalid escape '\\x'"],
  ['${file/\\a/b}', "invalid pattern (\\a) in substitution: invalid escape '\\a'"],
  ['${hi/x', "syntax error: missing '/' in ${}"],
  ['${hi/x/y', "syntax error: missing '}'"],
  ['${unset?}', 'unset: is not allowed to be unset'],
  ['${unset:?}', 'unset: is not allowed to be unset'],
  ['${unset?boom}', 'unset: boom'],
  ['${unset:?must set it}', 'unset: must set it'],
  ['${empty:?}', 'empty: is not allowed to be empty'],
  ['${empty:?boom}', 'empty: boom'],
  ["'abc", 'unexpected end of statement while looking for matching single-quote'],
  ['"abc', 'unexpected end of statement while looking for matching double-quote'],
  ['"abc\\', 'unexpected end of statement while looking for matching double-quote'],
];
for (const [input, message] of errors) {
  test(`expand error ${JSON.stringify(input)}`, () => {
    for (const fn of [expandWord, expandWords]) {
      assert.throws(
        () => fn(input, env),
        (e: unknown) => e instanceof ShellExpansionError && e.message === message && e.word === input,
      );
    }
  });
}

test('matched and unmatched variables are reported once, in order of use', () => {
  const r = expandWord('$hi ${unset:-x} ${hi} ${empty:+y} $1', env);
  assert.deepEqual(r.matched, ['hi', 'empty']);
  assert.deepEqual(r.unmatched, ['unset', '1']);
  const w = expandWords('${a:-$hi}', env);
  assert.deepEqual(w.unmatched, ['a']);
  assert.deepEqual(w.matched, ['hi']);
});

test('env may be a lookup function', () => {
  const seen: string[] = [];
  const r = expandWord('${A}-${B:-b}', (n) => {
    seen.push(n);
    return n === 'A' ? 'a' : undefined;
  });
  assert.equal(r.value, 'a-b');
  assert.deepEqual(seen, ['A', 'B']);
});

test('backtick escape token (# escape=`)', () => {
  const o = { escapeToken: '`' as const };
  assert.equal(expandWord('`$hi', env, o).value, '$hi');
  assert.equal(expandWord('c:\\path\\$hi', env, o).value, 'c:\\path\\hi');
  assert.equal(expandWord('"a`"b"', env, o).value, 'a"b');
  assert.equal(expandWord('"a\\"', env, o).value, 'a\\');
  assert.deepEqual(expandWords('a` b c', env, o).words, ['a b', 'c']);
});

test('pathological patterns finish (linear-time matching, no backtracking blow-up)', () => {
  const a = new Map([['A', 'a'.repeat(3000)]]);
  const pat = '*a'.repeat(12) + 'b';
  assert.equal(expandWord(`\${A#${pat}}`, a).value.length, 3000);
  assert.equal(expandWord(`\${A%${pat}}`, a).value.length, 3000);
  assert.equal(expandWord(`\${A/${pat}/x}`, a).value.length, 3000);
  assert.equal(expandWord('${A//a/b}', a).value, 'b'.repeat(3000));
});

test('trim and replace on a 3,000+ character value give BuildKit\'s results (Go regexp semantics as the oracle)', () => {
  const v = Array.from({ length: 700 }, (_, i) => `d${i}`).join('/');
  assert.ok(v.length > 3000);
  const e = new Map([['V', v]]);
  const x = (w: string) => expandWord(w, e).value;
  assert.equal(x('${V##*/}'), 'd699');
  assert.equal(x('${V#*/}'), v.slice(3));
  assert.equal(x('${V%%/*}'), 'd0');
  assert.equal(x('${V%/*}'), v.slice(0, -5));
  assert.equal(x('${V#*d350/}'), v.slice(v.indexOf('d350/') + 5));
  assert.equal(x('${V%/d35*}'), v.slice(0, v.lastIndexOf('/d35')));
  assert.equal(x('${V/*x*y/z}'), v);
  // JS's greedy leftmost-first regexps agree with Go's here (one kind of star, no alternation)
  assert.equal(x('${V//d?9\\//+}'), v.replace(/d.9\//g, '+'));
  assert.equal(x('${V//1*2/+}'), v.replace(/1.*2/g, '+'));
  assert.equal(x('${V/d6?/+}'), v.replace(/d6./, '+'));
  assert.equal(x('${V//d*y/z}'), v);
});

test('glob details: literal brackets, escapes, newlines, empty matches', () => {
  const e = new Map([['v', 'a/b-c.d']]);
  assert.equal(expandWord('${v#*/}', e).value, 'b-c.d'); // * crosses nothing special in shell patterns
  assert.equal(expandWord('${v%[.-]*}', e).value, 'a/b-c.d'); // no bracket expressions
  assert.equal(expandWord('${v#[!a]}', new Map([['v', '[!a]z']])).value, 'z');
  assert.equal(expandWord('${v/[/x}', new Map([['v', 'a[b']])).value, 'axb');
  assert.equal(expandWord('${v//x*/Y}', new Map([['v', 'axbxc']])).value, 'aY'); // longest match
  assert.equal(expandWord('${v//b*/}', new Map([['v', 'abc']])).value, 'a');
  // * and ? stop at a newline (Go's regexp '.')
  assert.equal(expandWord('${v#*}', new Map([['v', 'ab\ncd']])).value, 'ab\ncd');
  assert.equal(expandWord('${v##*}', new Map([['v', 'ab\ncd']])).value, '\ncd');
  assert.equal(expandWord('${v#??}', new Map([['v', 'a\nb']])).value, 'a\nb');
  // escaped delimiters inside the pattern
  assert.equal(expandWord('${v%\\}}', new Map([['v', 'x}']])).value, 'x');
  assert.equal(expandWord('${v//\\//_}', new Map([['v', '/a/b']])).value, '_a_b');
  // a pattern from a variable is still a pattern; an escape there must be valid
  assert.equal(expandWord('${v#$p}', new Map([['v', 'a*b'], ['p', 'a\\*']])).value, 'b');
  assert.throws(() => expandWord('${v#$p}', new Map([['v', 'ab'], ['p', 'a\\']])), /invalid escape/);
});

test('replace-all expands $0 and $$ in the replacement (Go regexp template); the first-match form does not', () => {
  const e = new Map([['v', 'one two']]);
  assert.equal(expandWord("${v//o/'[$0]'}", e).value, '[o]ne tw[o]');
  assert.equal(expandWord("${v//o/'$$'}", e).value, '$ne tw$');
  assert.equal(expandWord("${v//o/'<${0}$x>'}", e).value, '<o>ne tw<o>'); // unknown names are empty
  assert.equal(expandWord("${v//o/'$'}", e).value, '$ne tw$'); // a lone $ is kept
  assert.equal(expandWord("${v/o/'[$0]'}", e).value, '[$0]ne two');
});

test('locateShellError: BuildKit-style message with the instruction location', async () => {
  const { locateShellError, DockerfileError } = await import('../../lib/frontend/dockerfile/index');
  const { ImgError } = await import('../../lib/util/errors');
  let caught: unknown;
  try {
    expandWord('${X:?set X}', new Map());
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ShellExpansionError);
  const d = locateShellError(caught, { file: 'Dockerfile', line: 7, snippet: 'RUN echo ${X:?set X}' });
  assert.ok(d instanceof DockerfileError && d instanceof ImgError);
  assert.equal(d.message, 'Dockerfile:7: failed to process "${X:?set X}": X: set X');
  assert.equal(d.line, 7);
  assert.ok(d.hint);
});

test('deeply nested substitutions are an error, not a stack overflow', () => {
  const deep = '${a:-'.repeat(20_000) + 'x' + '}'.repeat(20_000);
  assert.throws(() => expandWord(deep, env), (e: unknown) => e instanceof ShellExpansionError && /nested too deeply/.test(e.message));
  const ok = '${a:-'.repeat(100) + 'x' + '}'.repeat(100);
  assert.equal(expandWord(ok, env).value, 'x');
});

test('glob automaton agrees with a regular-expression oracle on random patterns', async () => {
  const { matchShellPattern } = await import('../../lib/frontend/dockerfile/index');
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  // BuildKit turns the pattern into a Go regexp: * is .* and ? is . (neither
  // matches a newline), escaped * ? \ are literal, everything else ('[' too) is literal.
  const PAT = ['*', '?', 'a', 'b', '/', '[ab]', '[!a]', ']', '\\*', '\\?', '\\\\', '.', '-', '\n'];
  const STR = ['a', 'b', '/', '.', '-', '*', '[', ']', '\\', '\n', '\r'];
  const oracle = (p: string): RegExp => {
    let re = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === '*') re += '[^\\n]*';
      else if (c === '?') re += '[^\\n]';
      else if (c === '\\') re += '\\' + p[++i];
      else re += c.replace(/[.\/\-[\]]/g, '\\$&');
    }
    return new RegExp(`^(?:${re})$`);
  };
  for (let k = 0; k < 3000; k++) {
    let p = '';
    for (let j = rnd(6); j >= 0; j--) p += PAT[rnd(PAT.length)];
    let s = '';
    for (let j = rnd(8); j > 0; j--) s += STR[rnd(STR.length)];
    assert.equal(matchShellPattern(p, s), oracle(p).test(s), `${p} vs ${s}`);
  }
});
