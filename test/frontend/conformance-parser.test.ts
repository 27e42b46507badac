// Conformance of the parser with BuildKit's (frontend/dockerfile/parser and
// instructions): our instruction list is printed in BuildKit's AST dump
// notation — `(keyword ["--flag"...] "arg" ...)`, strings quoted like Go's
// strconv.Quote — and compared with what BuildKit's parser prints for the same
// text. The Dockerfiles are our own; each exercises a rule BuildKit's parser
// test files pin down (continuations, escapes, ENV/LABEL forms, JSON forms,
// flags, HEALTHCHECK, ONBUILD, directives, heredocs, instruction errors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile, DockerfileError } from '../../lib/frontend/dockerfile/index';
import type { Instruction } from '../../lib/frontend/dockerfile/index';

function goQuote(s: string): string {
  let o = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r' };
    if (ch === '"' || ch === '\\') o += '\\' + ch;
    else if (named[c]) o += named[c];
    else if (/[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u.test(ch)) o += ch;
    else if (c < 0x80) o += '\\x' + c.toString(16).padStart(2, '0');
    else o += '\\u' + c.toString(16).padStart(4, '0');
  }
  return o + '"';
}

function node(i: Instruction): string {
  let s = i.keyword.toLowerCase();
  if (i.flags.length) s += ' [' + i.flags.map((f) => goQuote(f.raw)).join(' ') + ']';
  if (i.keyword === 'ONBUILD') return i.onbuild ? `${s} (${node(i.onbuild)})` : s;
  if ((i.keyword === 'ENV' || i.keyword === 'LABEL') && i.keyValues) {
    // key, value, separator ("=" for key=value, "" for the legacy `KEY value` form)
    for (const kv of i.keyValues) s += ` ${goQuote(kv.key)} ${goQuote(kv.value)} ${goQuote(kv.hasEquals ? '=' : '')}`;
    return s;
  }
  for (const a of i.args) s += ' ' + goQuote(a);
  return s;
}

function dump(text: string): string[] {
  return parseDockerfile(text, { validate: false }).instructions.map((i) => `(${node(i)})`);
}

test('continuations: indentation kept, blank and comment lines skipped, escape at EOF', () => {
  const df = [
    'FROM scratch',
    'RUN printf one\\',
    '    two\\',
    '  three  \\',
    '   four\\',
    'five',
    'RUN a  \\  ',
    'b',
    'RUN c \\',
    ' \\',
    ' d \\',
    '\\',
    ' e',
    'RUN f \\',
    '',
    '# a comment line',
    '   # an indented one',
    'g',
    'RUN last \\',
  ].join('\n');
  assert.deepEqual(dump(df), [
    '(from "scratch")',
    '(run "printf one    two  three     fourfive")',
    '(run "a  b")',
    '(run "c   d  e")',
    '(run "f g")',
    '(run "last")',
  ]);
});

test('an escaped escape token at the end of a line does not continue it', () => {
  assert.deepEqual(dump('FROM scratch\nENV P=C:\\\\dir\\\\\nENV Q=next\n'), [
    '(from "scratch")',
    '(env "P" "C:\\\\\\\\dir\\\\\\\\" "=")',
    '(env "Q" "next" "=")',
  ]);
});

test('shell-form text is kept as written (escapes and quotes untouched)', () => {
  const df = 'FROM scratch\nLABEL who Ann \\\\Smith <ann@example.org>\\"\nRUN mk \\dir && \\\n  run \\"x y\nCOPY \\src\\\\" /dst\nCMD [ "\\/bin\\\\\\"/tool", "-v" ]\n';
  assert.deepEqual(dump(df), [
    '(from "scratch")',
    '(label "who" "Ann \\\\\\\\Smith <ann@example.org>\\\\\\"" "")',
    '(run "mk \\\\dir &&   run \\\\\\"x y")',
    '(copy "\\\\src\\\\\\\\\\"" "/dst")',
    '(cmd "/bin\\\\\\"/tool" "-v")',
  ]);
});

test('ENV and LABEL: legacy and key=value forms, quotes and escapes kept', () => {
  const df = [
    'FROM scratch',
    'ENV key some value here',
    'ENV key=v',
    'ENV k1=v1 k2=v2',
    'ENV k="v w"',
    'ENV k=v\\ w',
    'ENV k="v\'s q\'w"',
    "ENV k='v\"d q\"w'",
    'ENV k="a\\"b"',
    "ENV k='a\\'b'",
    'ENV k="\'\'"',
    'ENV k1=v \\',
    '    k2="x \\',
    '       y" \\',
    '\tk3="p\\\\nq" \\',
  ].join('\n');
  assert.deepEqual(dump(df), [
    '(from "scratch")',
    '(env "key" "some value here" "")',
    '(env "key" "v" "=")',
    '(env "k1" "v1" "=" "k2" "v2" "=")',
    '(env "k" "\\"v w\\"" "=")',
    '(env "k" "v\\\\ w" "=")',
    '(env "k" "\\"v\'s q\'w\\"" "=")',
    '(env "k" "\'v\\"d q\\"w\'" "=")',
    '(env "k" "\\"a\\\\\\"b\\"" "=")',
    '(env "k" "\'a\\\\\'b\'" "=")',
    '(env "k" "\\"\'\'\\"" "=")',
    '(env "k1" "v" "=" "k2" "\\"x        y\\"" "=" "k3" "\\"p\\\\\\\\nq\\"" "=")',
  ]);
});

test('JSON (exec) form: whitespace, escapes, empty arrays; invalid JSON is shell form', () => {
  const df = [
    'CMD []',
    'CMD [""]',
    'CMD [ "x" ,"y" ]',
    'CMD\t[\t"x",\t"y"\t]\t',
    'ENTRYPOINT ["é", "\\u00e9", "\\" \\\\ \\/ \\t \\u0001"]',
    "CMD ['single', 'quotes']",
    'CMD ["unclosed"',
    'CMD ["no end quote]',
    'CMD "[\\"in\\", \\"a string\\"]"',
  ].join('\n');
  assert.deepEqual(dump(df), [
    '(cmd)',
    '(cmd "")',
    '(cmd "x" "y")',
    '(cmd "x" "y")',
    '(entrypoint "é" "é" "\\" \\\\ / \\t \\x01")',
    '(cmd "[\'single\', \'quotes\']")',
    '(cmd "[\\"unclosed\\"")',
    '(cmd "[\\"no end quote]")',
    '(cmd "\\"[\\\\\\"in\\\\\\", \\\\\\"a string\\\\\\"]\\"")',
  ]);
  for (const bad of ['["a", 7]', '["a", {}]', '["a", ["b"]]', '["a", true]', '["a", null]', '["a", 1.5]']) {
    assert.throws(() => parseDockerfile(`FROM scratch\nCMD ${bad}`), /arrays must be comprised of strings only/, bad);
  }
});

test('flags: leading --words, a bare -- ends them, JSON after flags', () => {
  const df = [
    'FROM scratch',
    'COPY --chown=1:2 a /b/',
    'COPY --chown=1:2 --chmod=600 a /b/',
    'COPY --link -- a /b/',
    'COPY -- a /b/',
    'ADD --checksum=sha256:00 ["x y", "/z"]',
    'CMD --flag [ "p", "q" ]',
    'CMD --flag=1 -- [ ]',
  ].join('\n');
  assert.deepEqual(dump(df), [
    '(from "scratch")',
    '(copy ["--chown=1:2"] "a" "/b/")',
    '(copy ["--chown=1:2" "--chmod=600"] "a" "/b/")',
    '(copy ["--link"] "a" "/b/")',
    '(copy "a" "/b/")',
    '(add ["--checksum=sha256:00"] "x y" "/z")',
    '(cmd ["--flag"] "p" "q")',
    '(cmd ["--flag=1"])',
  ]);
});

test('HEALTHCHECK, ONBUILD, single-string and whitespace-list instructions', () => {
  const df = [
    'FROM img:1 AS base',
    'HEALTHCHECK',
    'HEALTHCHECK --interval=10s --retries=2 \\',
    '  CMD /probe --fast',
    'HEALTHCHECK CMD',
    'HEALTHCHECK   CMD   p q',
    'HEALTHCHECK --timeout=1s CMD ["probe"]',
    'HEALTHCHECK NONE',
    'ONBUILD RUN ["go", "build"]',
    'ONBUILD RUN go build',
    'ONBUILD ADD . /app',
    'USER app:app',
    'WORKDIR /a b',
    'STOPSIGNAL SIGTERM',
    'EXPOSE 1 2\t3',
    'VOLUME /v1 /v2',
    'VOLUME ["/v3"]',
    'ARG a b=1',
    'UNKNOWN x y',
  ].join('\n');
  assert.deepEqual(dump(df), [
    '(from "img:1" "AS" "base")',
    '(healthcheck)',
    '(healthcheck ["--interval=10s" "--retries=2"] "CMD" "/probe --fast")',
    '(healthcheck "CMD")',
    '(healthcheck "CMD" "p q")',
    '(healthcheck ["--timeout=1s"] "CMD" "probe")',
    '(healthcheck "NONE")',
    '(onbuild (run "go" "build"))',
    '(onbuild (run "go build"))',
    '(onbuild (add "." "/app"))',
    '(user "app:app")',
    '(workdir "/a b")',
    '(stopsignal "SIGTERM")',
    '(expose "1" "2" "3")',
    '(volume "/v1" "/v2")',
    '(volume "/v3")',
    '(arg "a" "b=1")',
    '(unknown "")',
  ]);
});

test('escape directive: backtick, leading blanks, only before anything else', () => {
  assert.deepEqual(dump('# escape=`\nFROM img\nENV P `\n\\dir'), ['(from "img")', '(env "P" "\\\\dir" "")']);
  assert.deepEqual(dump('  #  Escape = `\n\nFROM img\nENV P `\n\\dir'), ['(from "img")', '(env "P" "\\\\dir" "")']);
  // after an ordinary comment it is just a comment; \ stays the escape
  assert.deepEqual(dump('# notes\n# escape=`\nFROM img\nENV P \\\n\\dir'), ['(from "img")', '(env "P" "\\\\dir" "")']);
  assert.throws(() => parseDockerfile('# escape=``\nFROM img'), /invalid escape token '``' does not match ` or \\/);
  assert.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM img'), /only one escape parser directive can be used/);
  assert.equal(parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM img').escapeToken, '`');
});

test('BOM, CRLF, line numbers and the empty-continuation warning', () => {
  const p = parseDockerfile('\ufeffFROM img\r\n\r\nRUN a \\\r\n\r\n  b\r\n# note\r\nCMD ["c"]\r\n');
  assert.deepEqual(p.instructions.map((i) => [i.keyword, i.args, i.startLine, i.endLine]), [
    ['FROM', ['img'], 1, 1],
    ['RUN', ['a   b'], 3, 5],
    ['CMD', ['c'], 7, 7],
  ]);
  assert.equal(p.warnings.filter((w) => w.rule === 'NoEmptyContinuation').length, 1);
  assert.equal(p.warnings.find((w) => w.rule === 'NoEmptyContinuation')!.message, 'Empty continuation line');
  assert.throws(() => parseDockerfile('# only a comment\n\n'), /file with no instructions/);
});

test('heredocs: markers, quoting, chomping, several per line, JSON form has none', () => {
  const df = [
    'FROM img',
    'ENV N=x',
    'RUN <<NONE',
    'NONE',
    'RUN 5<<FD',
    'FD',
    'RUN "<<QUOTED"',
    'RUN <<TABS',
    '\tone',
    'TABS',
    'RUN <<-CHOMP',
    '\tone $N',
    '\tCHOMP',
    "RUN <<-'LIT'",
    '\tkeep $N',
    'LIT',
    'RUN --network=none <<BODY',
    '# not a comment',
    'BODY',
    'COPY <<A <<B /dst/',
    'B',
    'A',
    'A',
    'B',
    'RUN <<PY python3',
    'print(1)',
    'PY',
    'COPY <<conf.ini /etc/',
    'k=v',
    'conf.ini',
    "RUN <<en'd'",
    'x',
    'end',
    "RUN <<en\\'d",
    'x',
    "en'd",
    "RUN <<'two words'",
    'x',
    'two words',
    'RUN <<$TERM',
    '$TERM',
    'RUN <<   SPACED > out',
    'SPACED',
    'RUN ["<<NOT"]',
  ].join('\n');
  const p = parseDockerfile(df, { validate: false });
  const hd = p.instructions.slice(2).map((i) => i.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp, h.fileDescriptor ?? 0]));
  assert.deepEqual(hd, [
    [['NONE', '', true, false, 0]],
    [['FD', '', true, false, 5]],
    [],
    [['TABS', '\tone\n', true, false, 0]],
    // img's AST keeps <<- bodies with the tabs already removed (BuildKit strips them one layer later)
    [['CHOMP', 'one $N\n', true, true, 0]],
    [['LIT', 'keep $N\n', false, true, 0]],
    [['BODY', '# not a comment\n', true, false, 0]],
    [
      ['A', 'B\n', true, false, 0],
      ['B', 'A\n', true, false, 0],
    ],
    [['PY', 'print(1)\n', true, false, 0]],
    [['conf.ini', 'k=v\n', true, false, 0]],
    [['end', 'x\n', false, false, 0]],
    [["en'd", 'x\n', true, false, 0]],
    [['two words', 'x\n', false, false, 0]],
    [['$TERM', '', true, false, 0]],
    [['SPACED', '', true, false, 0]],
    [],
  ]);
  assert.throws(() => parseDockerfile('FROM img\nRUN <<EOF\nno end'), /unterminated heredoc/);
  // ONBUILD looks through to its trigger
  const ob = parseDockerfile('FROM img\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN done');
  assert.deepEqual(ob.instructions.map((i) => i.keyword), ['FROM', 'ONBUILD', 'RUN']);
  assert.equal(ob.instructions[1].heredocs[0].content, 'echo hi\n');
});

// The parse error's reason for a Dockerfile, or 'no error'.
function reason(df: string): string {
  try {
    parseDockerfile(df);
  } catch (e) {
    assert.ok(e instanceof DockerfileError, String(e));
    return e.reason;
  }
  return 'no error';
}

test('instruction errors: BuildKit messages', () => {
  for (const kw of ['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL']) assert.equal(reason(`FROM img\n${kw}`), `${kw} requires exactly one argument`);
  for (const kw of ['ENV', 'LABEL', 'ONBUILD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME', 'ARG']) {
    assert.equal(reason(`FROM img\n${kw}`), `${kw} requires at least one argument`);
  }
  for (const kw of ['ADD', 'COPY']) {
    assert.equal(reason(`FROM img\n${kw} only-src`), `${kw} requires at least two arguments, but only one was provided. Destination could not be determined`);
    assert.equal(reason(`FROM img\n${kw} /src <<EOF\nEOF`), `${kw} cannot accept a heredoc as a destination`);
  }
  assert.equal(reason('FROM img\nCOPY\t\n\t\tsrcdir \\\n   dstdir'), 'COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  assert.equal(reason('FROM img\nENV =v'), 'ENV names can not be blank');
  assert.equal(reason('FROM img\nLABEL =v'), 'LABEL names can not be blank');
  assert.equal(reason('FROM img\nENV lonely'), 'ENV must have two arguments');
  assert.equal(reason('FROM img\nENV a=1 b'), 'Syntax error - can\'t find = in "b". Must be of the form: name=value');
  assert.equal(reason('FROM img\nONBUILD FROM other'), "FROM isn't allowed as an ONBUILD trigger");
  assert.equal(reason('FROM img\nONBUILD MAINTAINER me'), "MAINTAINER isn't allowed as an ONBUILD trigger");
  assert.equal(reason('FROM img\nONBUILD ONBUILD RUN x'), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  assert.equal(reason('FROM img\nMAINTAINER --zap me@example.org'), 'unknown flag: --zap');
  assert.match(reason('FROM img\nFETCH x'), /^unknown instruction: FETCH/);
  assert.match(reason('FROM img\nfetch x'), /^unknown instruction: fetch/);
  assert.equal(reason('FROM img\nHEALTHCHECK --interval=10ns CMD x'), 'Interval "interval" cannot be less than 1ms');
  assert.equal(reason('FROM img\nHEALTHCHECK --interval=0s CMD x'), 'no error');
  assert.equal(reason('FROM img\nSHELL []'), 'SHELL requires at least one argument');
  assert.equal(reason('FROM img a'), 'FROM requires either one or three arguments');
  // bool and string flags (BFlags)
  assert.equal(reason('FROM img\nCOPY --link=False a b'), 'no error');
  assert.equal(reason('FROM img\nCOPY --link=maybe a b'), 'expecting boolean value for flag --link, not: maybe');
  assert.equal(reason('FROM img\nCOPY --link= a b'), 'missing a value on flag: --link');
  assert.equal(reason('FROM img\nCOPY --chown a b'), 'missing a value on flag: --chown');
  assert.equal(reason('FROM img\nCOPY --chown= a b'), 'no error');
  assert.equal(reason('FROM img\nCOPY --from=x --from=y a b'), 'duplicate flag specified: --from');
});

test('which instructions read their flags, and in which order (BuildKit parse functions)', () => {
  // STOPSIGNAL and ARG never look at flags: an unknown one is ignored
  assert.equal(reason('FROM img\nSTOPSIGNAL --grace=5 SIGQUIT'), 'no error');
  assert.equal(reason('FROM img\nARG --scope=global VERSION=2'), 'no error');
  assert.equal(reason('ARG --scope=global VERSION=2\nFROM img'), 'no error');
  // ...but still count their arguments
  assert.equal(reason('FROM img\nSTOPSIGNAL --grace=5'), 'STOPSIGNAL requires exactly one argument');
  // VOLUME counts its arguments before reading flags; ENV reads flags first
  assert.equal(reason('FROM img\nVOLUME --zap'), 'VOLUME requires at least one argument');
  assert.equal(reason('FROM img\nVOLUME --zap /data'), 'unknown flag: --zap');
  assert.equal(reason('FROM img\nENV --zap'), 'unknown flag: --zap');
  // a negative healthcheck duration is "less than 1ms", like any other below it
  assert.equal(reason('FROM img\nHEALTHCHECK --start-interval=-2m CMD true'), 'Interval "start-interval" cannot be less than 1ms');
});

test('"did you mean": edit distance 2 at most, flag names bare, instruction in the word\'s case', () => {
  assert.equal(reason('FROM img\nRUN --mnt=type=tmpfs,target=/t true'), 'unknown flag: --mnt (did you mean mount?)');
  assert.equal(reason('FROM img\nCOPY --chmd=644 a /b'), 'unknown flag: --chmd (did you mean chmod?)');
  assert.equal(reason('FROM img\nworkdr /srv'), 'unknown instruction: workdr (did you mean workdir?)');
  assert.equal(reason('FROM img\nWORKDR /srv'), 'unknown instruction: WORKDR (did you mean WORKDIR?)');
  assert.equal(reason('FROM img\nWorkDr /srv'), 'unknown instruction: WorkDr (did you mean workdir?)');
  // two edits away still counts, three do not
  assert.equal(reason('FROM img\nEXPO 80'), 'unknown instruction: EXPO (did you mean EXPOSE?)');
  assert.match(reason('FROM img\nEXPOSITION 80'), /^unknown instruction: EXPOSITION$/);
});

test('frontend detection: # and // syntax lines, after a #! line, or a JSON "syntax" key', async () => {
  const { detectSyntax } = await import('../../lib/frontend/dockerfile/index');
  const d = (t: string) => detectSyntax(t);
  assert.deepEqual(d('# syntax = my/frontend:2 --opt x\nFROM img\n'), { ref: 'my/frontend:2', cmdline: 'my/frontend:2 --opt x', line: 1 });
  assert.deepEqual(d('#!/usr/bin/env tool\n# syntax=my/frontend\nFROM img'), { ref: 'my/frontend', cmdline: 'my/frontend', line: 2 });
  assert.equal(d('#!/usr/bin/env tool\n\n# syntax=my/frontend\n'), undefined); // a blank line ends directives
  assert.equal(d('FROM img\n# syntax=my/frontend\n'), undefined);
  assert.equal(d('# check=skip=all\n# syntax=my/frontend\n')?.ref, 'my/frontend');
  assert.equal(d('# other=1\n# syntax=my/frontend\n'), undefined); // an unknown directive ends them
  assert.equal(d('//syntax=my/frontend\n//other=1')?.ref, 'my/frontend');
  assert.equal(d('#!/bin/true\n// syntax = my/frontend')?.ref, 'my/frontend');
  assert.equal(d('{"syntax": "my/frontend", "x": [1]}')?.ref, 'my/frontend');
  assert.equal(d('{"syntax": "my/frontend"'), undefined);
  assert.equal(d('{"syntax": "my/frontend"}\n# syntax=other'), undefined);
  assert.deepEqual(d('\ufeff# syntax=my/frontend\nFROM img'), { ref: 'my/frontend', cmdline: 'my/frontend', line: 1 });
  // the parser honours it: options after the image are ignored, a shebang line is allowed
  assert.throws(() => parseDockerfile('#!/bin/true\n# syntax=docker/dockerfile:1.2\nFROM a\nCOPY --link a b'), /not available in Dockerfile syntax docker\/dockerfile:1\.2\)/);
  assert.throws(() => parseDockerfile('#!/bin/true\n# syntax=some/other\nFROM a'), /unsupported frontend "some\/other"/);
  assert.equal(parseDockerfile('# syntax=docker/dockerfile:1 --some-opt\nFROM a').instructions.length, 1);
});
