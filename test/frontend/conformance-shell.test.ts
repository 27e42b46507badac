// Conformance of the word expander with BuildKit's shell lexer
// (frontend/dockerfile/shell): the behaviours its envVarTest / wordsTest data
// and lex tests pin down, written here with our own inputs. Each row says what
// BuildKit's ProcessWord / ProcessWords returns for it ('ERR' = an error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandWord, expandWords, ShellExpansionError } from '../../lib/frontend/dockerfile/index';
import { build, rejects } from './graphs/helpers';

const ERR = Symbol('error');
const env = new Map<string, string>([
  ['DIR', '/srv'],
  ['TOOL', 'make'],
  ['GREEK', 'αβγ'],
  ['BLANK', ''],
]);

function word(input: string, e: ReadonlyMap<string, string> = env): string | typeof ERR {
  try {
    return expandWord(input, e).value;
  } catch (err) {
    assert.ok(err instanceof ShellExpansionError, `${input}: ${String(err)}`);
    return ERR;
  }
}

// [input, result]
const single: [string, string | typeof ERR][] = [
  // quotes and escapes outside quotes
  ['plain', 'plain'],
  ["pl'ai'n", 'plain'],
  ["pl'ain", ERR],
  ["pl\\'ain", "pl'ain"],
  ["pl\\\\'ain", ERR],
  ['x\\ny', 'xny'],
  ['"x\\ny"', 'x\\ny'],
  ['"x\\\\ny"', 'x\\ny'],
  ["'x\\ny'", 'x\\ny'],
  ['end\\', 'end'],
  ['end\\\\', 'end\\'],
  ['"open', ERR],
  ['"open\\"', ERR],
  ['"mi\'xed"', "mi'xed"],
  ["'open", ERR],
  ["'tail\\'", 'tail\\'],
  ["'a\\tb'", 'a\\tb'],
  ["'a\\\\tb'", 'a\\\\tb'],
  ['"\'\'"', "''"],
  ["'\"q\"'", '"q"'],
  // $ that is not a reference
  ['$.', '$.'],
  ['$', '$'],
  ['q$.r', 'q$.r'],
  // positional parameters are names too (unset here)
  ['$7', ''],
  ['q$7r', 'qr'],
  // names are case-sensitive on Linux
  ['at$dir.', 'at.'],
  ['at$DIR', 'at/srv'],
  ['at\\$DIR', 'at$DIR'],
  ['at\\\\$DIR', 'at\\/srv'],
  ['"at\\$DIR"', 'at$DIR'],
  ['"at\\\\$DIR"', 'at\\/srv'],
  ["'at$DIR'", 'at$DIR'],
  ["'at\\$DIR'", 'at\\$DIR'],
  ['"at\'$DIR\'"', "at'/srv'"],
  // braces
  ['\\${}', '${}'],
  ['q\\${}r', 'q${}r'],
  ['${}', ERR],
  ['q${}r', ERR],
  ['q${nope}r', 'qr'],
  ['q${DIR}', 'q/srv'],
  ['q${.}', ERR],
  ['q${DIR', ERR],
  ['${{x}', ERR],
  ['${x}}', '}'],
  ['${:}', ERR],
  ['${:-v}', ERR],
  ['${:+v}', ERR],
  // defaults and alternatives, nested
  ['q${nope:-111}r', 'q111r'],
  ['q${DIR:-111}r', 'q/srvr'],
  ['q${nope:-$DIR}r', 'q/srvr'],
  ['q${nope:-${DIR:-z}}r', 'q/srvr'],
  ['q${nope:-${none:-z}}r', 'qzr'],
  ['q${nope:+${DIR}}r', 'qr'],
  ['q${DIR:+${nope}}r', 'qr'],
  ['q${DIR:+${TOOL}}r', 'qmaker'],
  ['q${DIR:+${DIR}:}r', 'q/srv:r'],
  ['q${nope:-\\$DIR:}r', 'q$DIR:r'],
  ['q${nope:-\\${DIR}w}r', 'q${DIRw}r'],
  ['${x:-v}}', 'v}'],
  ['${x:-v', ERR],
  ['${x:-v ${y}', ERR],
  ['${x:-v {y}', 'v {y'],
  ['q${nope:abc}', ERR],
  ['q${DIR:=1}r', ERR],
  ['${DIR=1}', ERR],
  ['${BLANK-d}|${BLANK:-d}|${BLANK+a}|${BLANK:+a}', '|d|a|'],
  ['${BLANK?m}', ''],
  ['${BLANK:?m}', ERR],
  ['${nope?m}', ERR],
  // non-ASCII text and values
  ['λ\'μ\'ν', 'λμν'],
  ['λμ$GREEK', 'λμαβγ'],
  ['λμ\\$GREEK', 'λμ$GREEK'],
  ['"λ\\tμ"', 'λ\\tμ'],
  // patterns: # ## % %% (shortest/longest), / and // (first/all); * and ? only
  ['${f#*.}', 'tar.xz'],
  ['${f##*.}', 'xz'],
  ['${f%.*}', 'pkg.tar'],
  ['${f%%.*}', 'pkg'],
  // ':' before # or % is an unsupported modifier, whatever the variable holds
  ['${f:#pk}', ERR],
  ['${f:#}', ERR],
  ['${f:##}', ERR],
  ['${f:%}', ERR],
  ['${f:%%}', ERR],
  ['${nope:#x}', ERR],
  ['${f#}|${f##}|${f%}|${f%%}', 'pkg.tar.xz|pkg.tar.xz|pkg.tar.xz|pkg.tar.xz'],
  ['${f#*}', 'pkg.tar.xz'],
  ['${f#p?g}', '.tar.xz'],
  ['${f/./-}', 'pkg-tar.xz'],
  ['${f//./-}', 'pkg-tar-xz'],
  ['${f/[a-z]/Z}', 'pkg.tar.xz'], // no bracket expressions: '[' is literal
  ['${f//}', ERR],
  ['${f//x}', ERR],
  ['${f///}', 'pkg.tar.xz'],
  ['${f%\\.xz}', ERR], // \. is not a valid pattern escape
  ['${f#\\p}', ERR],
];

test('ProcessWord equivalents: quotes, escapes, ${} forms, patterns', () => {
  const e = new Map([...env, ['f', 'pkg.tar.xz']]);
  for (const [input, want] of single) assert.equal(word(input, e), want, input);
});

test('${V:#p} / ${V:%p} in a Dockerfile: "unsupported modifier" naming the line, as BuildKit', async () => {
  for (const [word, mod] of [['${FOO:#}', ':#'], ['${FOO:##x}', ':#'], ['${FOO:%}', ':%'], ['${FOO:%%}', ':%']]) {
    await rejects(
      build(`FROM busybox\nARG FOO=abc\nENV X=${word}\n`),
      new RegExp(`^Dockerfile:3: failed to process "${word.replace(/[$*{}]/g, '\\$&')}": unsupported modifier \\(${mod}\\) in substitution$`),
      3,
    );
  }
});

test('pattern operators on special characters and escaped delimiters', () => {
  const e = (v: string, extra: [string, string][] = []) => new Map([['V', v], ...extra]);
  // '}' must be escaped inside ${...}; the escape is not part of the pattern
  assert.equal(word('${V#(){\\}[]^$.+|\\*\\?\\\\}', e('(){}[]^$.+|*?\\rest')), 'rest');
  assert.equal(word('${V%%\\**}', e('ab**')), 'ab');
  assert.equal(word('${V%%\\**\\*}', e('b***zz*')), 'b');
  assert.equal(word('${V#?\\?}', e('???z')), '?z');
  assert.equal(word('${V#*m*n}', e('mmnn')), 'n');
  assert.equal(word('${V##*m}', e('mmnn')), 'nn');
  assert.equal(word('${V#$P}', e('mmnn', [['P', 'm']])), 'mnn');
  assert.equal(word('${V#$P}', e('mmnn', [['P', '']])), 'mmnn');
  assert.equal(word('${U:-.}${V%m}${U:-.}', e('mmnn')), '.mmnn.');
  // a pattern taken from a variable is still a pattern
  assert.equal(word('${V/$P/+} ${V//$P/+}', e('/d*/x/*/y.c', [['P', '\\*/']])), '/d+x/*/y.c /d+x/+y.c');
  assert.equal(word('${V/$P/} ${V//$P/}', e('/opt/opt/z', [['P', '/opt']])), '/opt/z /z');
  assert.equal(word('${V/$P/$R} ${V//$P/$R}', e('/q/w/e/r.c', [['P', '/?/'], ['R', '/']])), '/w/e/r.c /w/r.c');
  assert.equal(word('${V/$P/$R}', e('ftp://host', [['P', 'ftp://'], ['R', 'sftp://']])), 'sftp://host');
  // escaped delimiters keep their backslash in the replacement
  assert.equal(word('${V//\\//\\/}', e('/a/b')), '\\/a\\/b');
  assert.equal(word('${V/$P/zz}', e('abc', [['P', '']])), 'zzabc');
  // invalid escapes coming from a variable
  for (const p of ['\\', '\\q', '\\\\\\']) assert.equal(word('${V#$P}', e('x', [['P', p]])), ERR, p);
});

test('?/?? mandatory forms: message is expanded, named in the error', () => {
  const msg = (e: Map<string, string>, input: string): string => {
    try {
      expandWord(input, e);
    } catch (err) {
      return (err as Error).message;
    }
    return 'no error';
  };
  const withArg = (v?: string) => new Map<string, string>([['W', 'why'], ...(v === undefined ? [] : [['NEED', v] as [string, string]])]);
  assert.equal(expandWord('${NEED:?set it: $W}', withArg('ok')).value, 'ok');
  assert.equal(msg(withArg(''), '${NEED:?set it: $W}'), 'NEED: set it: why');
  assert.equal(msg(withArg(), '${NEED:?set it: $W}'), 'NEED: set it: why');
  assert.equal(expandWord('${NEED?set it: $W}', withArg('')).value, '');
  assert.equal(msg(withArg(), '${NEED?set it: $W}'), 'NEED: set it: why');
  assert.equal(msg(withArg(), '${NEED?}'), 'NEED: is not allowed to be unset');
  assert.equal(msg(withArg(''), '${NEED:?}'), 'NEED: is not allowed to be empty');
});

test('matched and unmatched names, as ProcessWordWithMatches reports them', () => {
  const e = new Map([['A', 'aa'], ['B', '']]);
  const r = (input: string) => {
    const x = expandWord(input, e);
    return { v: x.value, m: [...x.matched].sort(), u: [...x.unmatched].sort() };
  };
  assert.deepEqual(r('${A-1} ${B-2} ${C-3}'), { v: 'aa  3', m: ['A', 'B'], u: ['C'] });
  assert.deepEqual(r('${A:-1} ${B:-2} ${C:-3}'), { v: 'aa 2 3', m: ['A', 'B'], u: ['C'] });
  assert.deepEqual(r('${A+1} ${B+2} ${C+3}'), { v: '1 2 ', m: ['A', 'B'], u: ['C'] });
  assert.deepEqual(r('${A:+1} ${B:+2} ${C:+3}'), { v: '1  ', m: ['A', 'B'], u: ['C'] });
  assert.deepEqual(r('${C///}'), { v: '', m: [], u: ['C'] });
  assert.deepEqual(r('pre ${NONE}'), { v: 'pre ', m: [], u: ['NONE'] });
  // a release-file name with an optional variant suffix
  const rel = 'tool-${VER}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz';
  const base = { VER: '2.0', OS: 'linux' };
  assert.equal(expandWord(rel, new Map(Object.entries({ ...base, ARCH: 'arm', VARIANT: 'v6' }))).value, 'tool-2.0.linux-arm-v6.tgz');
  assert.equal(expandWord(rel, new Map(Object.entries({ ...base, ARCH: 'riscv64', VARIANT: '' }))).value, 'tool-2.0.linux-riscv64.tgz');
  assert.equal(expandWord(rel, new Map(Object.entries({ ...base, ARCH: 'riscv64' }))).value, 'tool-2.0.linux-riscv64.tgz');
});

test('ProcessWords equivalents: splitting happens after expansion, quotes protect', () => {
  const e = new Map<string, string>();
  const steps: ([string, string] | [string, string[] | typeof ERR])[] = [
    ['one', ['one']],
    ['go${v}stop', ['gostop']],
    ['ENV', 'v=val'],
    ['go${v}stop', ['govalstop']],
    ['ENV', 'gap=uvw  xyz'],
    ['go${gap}stop', ['gouvw', 'xyzstop']],
    ['go"${gap}"stop', ['gouvw  xyzstop']],
    ['go "${gap}"stop', ['go', 'uvw  xyzstop']],
    ['ENV', 'lead=  uv w'],
    ['go${lead}xyz', ['go', 'uv', 'wxyz']],
    ['go"${lead}" xyz', ['go  uv w', 'xyz']],
    ['go"${lead}"', ['go  uv w']],
    ['go${lead}', ['go', 'uv', 'w']],
    ['ENV', 'trail=uv w   '],
    ['go${trail}', ['gouv', 'w']],
    ['go${trail}z', ['gouv', 'w', 'z']],
    ['go"${trail}"z', ['gouv w   z']],
    ['g"o${trail}"', ['gouv w   ']],
    ['go" far  "', ['go far  ']],
    ['go far     ', ['go', 'far']],
    ['go\\ far', ['go far']],
    ['go" far', ERR],
    ['go\\" far', ['go"', 'far']],
    ['"" x', ['x']], // an empty word vanishes
  ];
  for (const [input, want] of steps) {
    if (input === 'ENV') {
      const s = want as string;
      const i = s.indexOf('=');
      e.set(s.slice(0, i), s.slice(i + 1));
      continue;
    }
    let got: string[] | typeof ERR;
    try {
      got = expandWords(input, e).words;
    } catch {
      got = ERR;
    }
    assert.deepEqual(got, want, input);
  }
});

test('`<<` keeps the blanks after it in its word (heredoc detection), the text is unchanged', () => {
  const e = new Map<string, string>();
  assert.deepEqual(expandWords('cat <<  END > f', e).words, ['cat', '<<  END', '>', 'f']);
  assert.deepEqual(expandWords('a < b', e).words, ['a', '<', 'b']);
  assert.equal(expandWord('cat <<  END', e).value, 'cat <<  END');
});

test('lexer switches: raw quotes, raw escapes, unset references kept, quotes not processed', async () => {
  const { lexWords } = await import('../../lib/frontend/dockerfile/index');
  const e = new Map([['SET', 'yes']]);
  // RawQuotes + SkipUnsetEnv (how heredoc words are read)
  assert.deepEqual(lexWords(`a\${NOPE}b "q r" '\${X:-y}' $SET $NOPE2`, e, { rawQuotes: true, skipUnsetEnv: true }).words, [
    'a${NOPE}b',
    '"q r"',
    "'${X:-y}'",
    'yes',
    '$NOPE2',
  ]);
  // RawEscapes keeps the escape characters
  assert.equal(lexWords('a\\ b\\$SET', e, { rawEscapes: true }).value, 'a\\ b\\$SET');
  // SkipProcessQuotes: quotes are plain text, variables still expand
  assert.equal(lexWords(`say "$SET" '$SET'`, e, { skipProcessQuotes: true }).value, `say "yes" 'yes'`);
});
