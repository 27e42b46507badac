// Dockerfile parser: behaviour from the Dockerfile reference (BuildKit frontend, syntax 1.x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile, DockerfileError, type Instruction } from '../../lib/frontend/dockerfile/index';

const one = (src: string): Instruction => {
  const p = parseDockerfile(src);
  return p.instructions[p.instructions.length - 1];
};
const shape = (i: Instruction) => ({ keyword: i.keyword, json: i.json, args: i.args });

// ---- forms of every instruction ----

const forms: [string, { keyword: string; json: boolean; args: string[] }][] = [
  ['FROM busybox', { keyword: 'FROM', json: false, args: ['busybox'] }],
  ['from busybox AS build', { keyword: 'FROM', json: false, args: ['busybox', 'AS', 'build'] }],
  ['FROM busybox as build', { keyword: 'FROM', json: false, args: ['busybox', 'as', 'build'] }],
  ['RUN echo hi  &&  ls', { keyword: 'RUN', json: false, args: ['echo hi  &&  ls'] }],
  ['RUN ["echo", "hi"]', { keyword: 'RUN', json: true, args: ['echo', 'hi'] }],
  ['RUN [ "echo" ,"a b" ]  ', { keyword: 'RUN', json: true, args: ['echo', 'a b'] }],
  ['RUN []', { keyword: 'RUN', json: true, args: [] }],
  ['RUN ["a\\"b", "\\u00e9", "c\\\\d"]', { keyword: 'RUN', json: true, args: ['a"b', 'é', 'c\\d'] }],
  // malformed JSON falls back to shell form
  ['CMD [ "a", b ]', { keyword: 'CMD', json: false, args: ['[ "a", b ]'] }],
  ["CMD ['a', 'b']", { keyword: 'CMD', json: false, args: ["['a', 'b']"] }],
  ['CMD ["a", "b"] extra', { keyword: 'CMD', json: false, args: ['["a", "b"] extra'] }],
  ['CMD ["a",]', { keyword: 'CMD', json: false, args: ['["a",]'] }],
  ['CMD [', { keyword: 'CMD', json: false, args: ['['] }],
  ['CMD', { keyword: 'CMD', json: false, args: [] }],
  ['ENTRYPOINT ["/bin/app", "--flag"]', { keyword: 'ENTRYPOINT', json: true, args: ['/bin/app', '--flag'] }],
  ['ENTRYPOINT exec app', { keyword: 'ENTRYPOINT', json: false, args: ['exec app'] }],
  ['SHELL ["/bin/sh", "-c"]', { keyword: 'SHELL', json: true, args: ['/bin/sh', '-c'] }],
  ['COPY a b /dst/', { keyword: 'COPY', json: false, args: ['a', 'b', '/dst/'] }],
  ['COPY ["a b", "/dst dir/"]', { keyword: 'COPY', json: true, args: ['a b', '/dst dir/'] }],
  // shell-form lists split on whitespace only: quotes are not honoured
  ['COPY "a b" c', { keyword: 'COPY', json: false, args: ['"a', 'b"', 'c'] }],
  ['ADD http://x/y.tgz /', { keyword: 'ADD', json: false, args: ['http://x/y.tgz', '/'] }],
  ['VOLUME /a /b', { keyword: 'VOLUME', json: false, args: ['/a', '/b'] }],
  ['VOLUME ["/a", "/b"]', { keyword: 'VOLUME', json: true, args: ['/a', '/b'] }],
  ['EXPOSE 80/tcp  443', { keyword: 'EXPOSE', json: false, args: ['80/tcp', '443'] }],
  ['USER app:app', { keyword: 'USER', json: false, args: ['app:app'] }],
  ['USER a b', { keyword: 'USER', json: false, args: ['a b'] }],
  ['WORKDIR /my dir', { keyword: 'WORKDIR', json: false, args: ['/my dir'] }],
  ['STOPSIGNAL SIGKILL', { keyword: 'STOPSIGNAL', json: false, args: ['SIGKILL'] }],
  ['MAINTAINER Jane Doe <j@d.example>', { keyword: 'MAINTAINER', json: false, args: ['Jane Doe <j@d.example>'] }],
  ['HEALTHCHECK NONE', { keyword: 'HEALTHCHECK', json: false, args: ['NONE'] }],
  ['HEALTHCHECK CMD curl -f http://localhost/', { keyword: 'HEALTHCHECK', json: false, args: ['CMD', 'curl -f http://localhost/'] }],
  ['HEALTHCHECK --retries=3 CMD ["curl", "-f", "x"]', { keyword: 'HEALTHCHECK', json: true, args: ['CMD', 'curl', '-f', 'x'] }],
  ['ONBUILD RUN make', { keyword: 'ONBUILD', json: false, args: ['RUN make'] }],
  ['ENV A=1', { keyword: 'ENV', json: false, args: ['A', '1'] }],
  ['LABEL a=b c=d', { keyword: 'LABEL', json: false, args: ['a', 'b', 'c', 'd'] }],
  ['ARG A B=2', { keyword: 'ARG', json: false, args: ['A', 'B=2'] }],
  // leading/trailing whitespace
  ['   RUN   echo hi   ', { keyword: 'RUN', json: false, args: ['echo hi'] }],
  ['\tRUN\techo', { keyword: 'RUN', json: false, args: ['echo'] }],
  // "#" after the start of a line is not a comment
  ['RUN echo # not a comment', { keyword: 'RUN', json: false, args: ['echo # not a comment'] }],
];
for (const [src, want] of forms) {
  test(`form: ${src}`, () => {
    const text = src.startsWith('FROM') || src.startsWith('from') ? src : `FROM busybox\n${src}`;
    assert.deepEqual(shape(one(text)), want);
  });
}

test('keywords are case-insensitive and canonicalized', () => {
  const p = parseDockerfile('from a\nRuN x\ncopy a b\nhealthcheck none\n');
  assert.deepEqual(p.instructions.map((i) => i.keyword), ['FROM', 'RUN', 'COPY', 'HEALTHCHECK']);
});

test('line numbers, original text and comments above an instruction', () => {
  const p = parseDockerfile('# about the base\n#\n# the base\nFROM a\n\n\nRUN a \\\n  b \\\n  c\nCMD x\n');
  const [from, run, cmd] = p.instructions;
  assert.deepEqual([from.startLine, from.endLine], [4, 4]);
  assert.deepEqual(from.comments, ['the base']); // an empty "#" resets
  assert.deepEqual([run.startLine, run.endLine], [7, 9]);
  assert.equal(run.original, 'RUN a   b   c');
  assert.deepEqual(run.args, ['a   b   c']);
  assert.deepEqual([cmd.startLine, cmd.endLine], [10, 10]);
});

// ---- continuations ----

test('continuation: escape at end of line, trailing whitespace allowed', () => {
  assert.deepEqual(one('FROM a\nRUN a \\   \n b').args, ['a  b']);
  assert.deepEqual(one('FROM a\nRUN a \\\t\n b').args, ['a  b']);
});

test('continuation: comments inside are dropped, even indented', () => {
  const i = one('FROM a\nRUN a \\\n# c1\n    # c2\n b');
  assert.deepEqual(i.args, ['a  b']);
  assert.deepEqual([i.startLine, i.endLine], [2, 5]);
});

test('continuation: empty lines are skipped with a warning', () => {
  const p = parseDockerfile('FROM a\nRUN a \\\n\n   \n b\n');
  assert.deepEqual(p.instructions[1].args, ['a  b']);
  assert.equal(p.warnings.length, 1);
  assert.equal(p.warnings[0].message, 'Empty continuation line'); // BuildKit's NoEmptyContinuation
  assert.deepEqual([p.warnings[0].rule, p.warnings[0].line, p.warnings[0].endLine], ['NoEmptyContinuation', 2, 5]);
});

test('continuation: at end of file the instruction ends', () => {
  assert.deepEqual(one('FROM a\nRUN a \\').args, ['a']);
  assert.deepEqual(one('FROM a\nRUN a \\\n').args, ['a']);
});

test('continuation: an escaped escape token at the end does not continue (BuildKit #1559)', () => {
  const p = parseDockerfile('FROM a\nENV P=dir\\\\\nENV Q=2');
  assert.deepEqual(p.instructions.map((i) => i.args), [['a'], ['P', 'dir\\\\'], ['Q', '2']]);
  // three in a row: still not a continuation (BuildKit's regexp looks at one character before)
  assert.equal(parseDockerfile('FROM a\nRUN x\\\\\\\nRUN y').instructions.length, 3);
  // a lone escape on its own line continues
  assert.deepEqual(one('FROM a\nRUN a \\\n\\\nb').args, ['a b']);
  const bt = parseDockerfile('# escape=`\nFROM a\nRUN x ``\nRUN y');
  assert.deepEqual(bt.instructions.map((i) => i.args), [['a'], ['x ``'], ['y']]);
});

test('continuation: a comment line cannot be continued', () => {
  const p = parseDockerfile('FROM a\n# comment \\\nRUN b');
  assert.deepEqual(p.instructions.map((i) => i.keyword), ['FROM', 'RUN']);
});

test('CRLF line endings and a UTF-8 BOM', () => {
  const p = parseDockerfile('\ufeffFROM a\r\nRUN a \\\r\n b\r\nCMD ["x"]\r\n');
  assert.deepEqual(p.instructions.map(shape), [
    { keyword: 'FROM', json: false, args: ['a'] },
    { keyword: 'RUN', json: false, args: ['a  b'] },
    { keyword: 'CMD', json: true, args: ['x'] },
  ]);
});

test('a BOM before a directive', () => {
  const p = parseDockerfile('\ufeff# escape=`\nFROM a\nRUN a `\n b');
  assert.equal(p.escapeToken, '`');
  assert.deepEqual(p.instructions[1].args, ['a  b']);
});

// ---- directives ----

test('directives: escape, syntax, check; case-insensitive, free whitespace', () => {
  const p = parseDockerfile('#  SYNTAX = docker/dockerfile:1.7 \n#Escape=`\n# check=skip=all\nFROM a\nRUN a `\n b\nRUN c \\');
  assert.deepEqual(p.directives, [
    { name: 'syntax', value: 'docker/dockerfile:1.7', line: 1 },
    { name: 'escape', value: '`', line: 2 },
    { name: 'check', value: 'skip=all', line: 3 },
  ]);
  assert.equal(p.escapeToken, '`');
  assert.deepEqual(p.instructions[1].args, ['a  b']);
  assert.deepEqual(p.instructions[2].args, ['c \\']); // \ is literal with escape=`
});

test('directives: only at the top; later they are comments', () => {
  for (const src of [
    'FROM a\n# escape=`\nRUN a `\n',
    '\n# escape=`\nFROM a\nRUN a `\n',
    '# a comment\n# escape=`\nFROM a\nRUN a `\n',
    '# unknowndirective=x\n# escape=`\nFROM a\nRUN a `\n',
  ]) {
    const p = parseDockerfile(src);
    assert.equal(p.escapeToken, '\\', src);
    assert.ok(!p.directives.some((d) => d.name === 'escape'), src);
  }
});

test('directives: a line continuation is not supported in a directive', () => {
  const p = parseDockerfile('# esc \\\n# ape=`\nFROM a');
  assert.deepEqual(p.directives, []);
});

test('syntax directive: the built-in frontend names are accepted', () => {
  for (const v of [
    'docker/dockerfile:1',
    'docker/dockerfile:1.7',
    'docker/dockerfile:1.7.1',
    'docker/dockerfile:1-labs',
    'docker/dockerfile:1.7-labs',
    'docker/dockerfile',
    'docker/dockerfile:latest',
    'docker/dockerfile:labs',
    'docker.io/docker/dockerfile:1',
    'docker.io/docker/dockerfile-upstream:master',
    `docker.io/docker/dockerfile:1@sha256:${'a'.repeat(64)}`,
  ]) {
    const p = parseDockerfile(`# syntax=${v}\nFROM a`);
    assert.equal(p.directives[0].value, v);
  }
});

// ---- flags ----

test('flags: --name=value, bare boolean, quoted values, repeatable, stop at first argument', () => {
  const i = one('FROM a\nCOPY --from=build --chmod="0755" --link --exclude=*.md --exclude=\'x y\' src --chown=1 /dst');
  assert.deepEqual(
    i.flags.map((f) => [f.name, f.value]),
    [
      ['from', 'build'],
      ['chmod', '0755'],
      ['link', null],
      ['exclude', '*.md'],
      ['exclude', 'x y'],
    ],
  );
  assert.deepEqual(i.args, ['src', '--chown=1', '/dst']);
});

test('flags: -- ends the flags', () => {
  const i = one('FROM a\nRUN --network=none -- --not-a-flag x');
  assert.deepEqual(i.flags.map((f) => f.name), ['network']);
  assert.deepEqual(i.args, ['--not-a-flag x']);
});

test('flags: boolean values are normalized', () => {
  const i = one('FROM a\nCOPY --link=TRUE --parents=false a b');
  assert.deepEqual(i.flags.map((f) => f.value), ['true', 'false']);
});

test('flags: RUN --mount can repeat; FROM --platform', () => {
  assert.equal(one('FROM a\nRUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b x').flags.length, 2);
  assert.deepEqual(one('FROM --platform=$BUILDPLATFORM a AS b').flags[0], { name: 'platform', value: '$BUILDPLATFORM', raw: '--platform=$BUILDPLATFORM' });
});

test('flags: labs features with the labs syntax', () => {
  const i = one('# syntax=docker/dockerfile:1-labs\nFROM a\nRUN --device=/dev/fuse x');
  assert.deepEqual(i.flags[0].name, 'device');
  // stable since 1.20 / 1.19 in the current syntax
  one('FROM a\nCOPY --parents --exclude=x a b');
  one('FROM a\nRUN --security=insecure x');
  one('# syntax=docker/dockerfile:1.7-labs\nFROM a\nCOPY --parents a b');
});

// ---- ENV / LABEL / ARG ----

test('ENV key=value list with quotes and escapes kept for the expander', () => {
  const i = one('FROM a\nENV A=1 B="two words" C=three\\ words D= E=\'$x\'');
  assert.deepEqual(
    i.keyValues,
    [
      { key: 'A', value: '1', hasEquals: true },
      { key: 'B', value: '"two words"', hasEquals: true },
      { key: 'C', value: 'three\\ words', hasEquals: true },
      { key: 'D', value: '', hasEquals: true },
      { key: 'E', value: "'$x'", hasEquals: true },
    ],
  );
});

test('ENV legacy form: the value is the rest of the line', () => {
  const p = parseDockerfile('FROM a\nENV a b c\nENV PATH  /x:$PATH  ');
  assert.deepEqual(p.instructions[1].keyValues, [{ key: 'a', value: 'b c', hasEquals: false }]);
  assert.deepEqual(p.instructions[2].keyValues, [{ key: 'PATH', value: '/x:$PATH', hasEquals: false }]);
  assert.equal(p.warnings.filter((w) => /legacy/.test(w.message)).length, 2);
});

test('LABEL values with spaces and continuations', () => {
  const i = one('FROM a\nLABEL "com.example.vendor"="ACME" \\\n  version="1.0" description="a b\\\n c"');
  assert.deepEqual(
    i.keyValues?.map((k) => [k.key, k.value]),
    [
      ['"com.example.vendor"', '"ACME"'],
      ['version', '"1.0"'],
      ['description', '"a b c"'],
    ],
  );
});

test('ARG names with and without defaults', () => {
  const i = one('ARG A B=2 C= "D=x y"');
  assert.deepEqual(i.keyValues, [
    { key: 'A', value: '', hasEquals: false },
    { key: 'B', value: '2', hasEquals: true },
    { key: 'C', value: '', hasEquals: true },
    { key: '"D', value: 'x y"', hasEquals: true },
  ]);
  assert.equal(parseDockerfile('ARG V=1\nFROM a:$V').instructions.length, 2);
});

// ---- ONBUILD ----

test('ONBUILD wraps a parsed instruction', () => {
  const i = one('FROM a\nONBUILD COPY --from=x a /b');
  assert.equal(i.onbuild?.keyword, 'COPY');
  assert.deepEqual(i.onbuild?.flags.map((f) => f.name), ['from']);
  assert.deepEqual(i.onbuild?.args, ['a', '/b']);
  assert.equal(one('FROM a\nonbuild run ["x"]').onbuild?.json, true);
});

// ---- heredocs ----

test('heredoc: RUN body, expansion flag, line numbers', () => {
  const p = parseDockerfile('FROM a\nRUN <<EOF\necho $HOME\n  indented\nEOF\nCMD x\n');
  const run = p.instructions[1];
  assert.deepEqual(run.args, ['<<EOF']);
  assert.deepEqual(run.heredocs, [{ name: 'EOF', content: 'echo $HOME\n  indented\n', expand: true, chomp: false }]);
  assert.deepEqual([run.startLine, run.endLine], [2, 5]);
  assert.equal(p.instructions[2].startLine, 6);
});

test('heredoc: quoted delimiters disable expansion', () => {
  for (const d of ["'EOF'", '"EOF"', 'E"O"F', "'E'OF"]) {
    const h = one(`FROM a\nRUN <<${d}\nx\nEOF`).heredocs[0];
    assert.equal(h.name, 'EOF', d);
    assert.equal(h.expand, false, d);
  }
});

test('heredoc: <<- strips leading tabs from body and terminator', () => {
  const h = one('FROM a\nRUN <<-EOT\n\techo a\n\t\t\tb\n  c\n\tEOT\n').heredocs[0];
  assert.equal(h.chomp, true);
  assert.equal(h.content, 'echo a\nb\n  c\n');
});

test('heredoc: several on one line, file descriptors, COPY and ADD', () => {
  const i = one('FROM a\nRUN 3<<A cat /dev/fd/3 && cat <<-"B"\none\nA\n\ttwo\n\tB\n');
  assert.deepEqual(i.heredocs, [
    { name: 'A', content: 'one\n', expand: true, chomp: false, fileDescriptor: 3 },
    { name: 'B', content: 'two\n', expand: false, chomp: true },
  ]);
  const c = one('FROM a\nCOPY <<f1 <<f2 /dst/\n1\nf1\n2\nf2\n');
  assert.deepEqual(c.heredocs.map((h) => [h.name, h.content]), [['f1', '1\n'], ['f2', '2\n']]);
  assert.equal(one('FROM a\nADD <<x /f\ny\nx').heredocs[0].content, 'y\n');
});

test('heredoc: empty body, body with continuation-looking lines and comments', () => {
  assert.equal(one('FROM a\nRUN <<EOF\nEOF').heredocs[0].content, '');
  assert.equal(one('FROM a\nRUN <<EOF\n# kept \\\n\nEOF').heredocs[0].content, '# kept \\\n\n');
});

test('heredoc: the marker after a continued line', () => {
  const i = one('FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nbody\nEOF\n');
  assert.equal(i.heredocs[0].content, 'body\n');
  assert.deepEqual([i.startLine, i.endLine], [2, 5]);
});

test('heredoc: not recognized where BuildKit does not', () => {
  // other instructions, exec form, quoted markers, markers glued to a word, <<<
  for (const src of [
    'FROM a\nCMD <<EOF',
    'FROM a\nRUN ["cat", "<<EOF"]',
    'FROM a\nRUN echo "<<EOF"',
    "FROM a\nRUN echo '<<EOF'",
    'FROM a\nRUN cat<<EOF',
    'FROM a\nRUN cat <<<EOF',
    'FROM a\nRUN echo \\<<EOF',
  ]) {
    const p = parseDockerfile(src);
    assert.ok(p.instructions.every((i) => i.heredocs.length === 0), src);
  }
});

test('heredoc: CRLF terminators', () => {
  const p = parseDockerfile('FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\nCMD y\r\n');
  const i = p.instructions[1];
  assert.equal(i.heredocs[0].name, 'EOF');
  assert.deepEqual([i.startLine, i.endLine], [2, 4]);
  assert.equal(p.instructions[2].keyword, 'CMD');
  // as BuildKit: the body keeps its carriage returns; a warning says so
  assert.equal(i.heredocs[0].content, 'x\r\n');
  assert.ok(p.warnings.some((w) => w.line === 2 && /CRLF/.test(w.message)));
});

// ---- every error: message and line ----

function err(src: string, opts?: { filename?: string }): DockerfileError {
  try {
    parseDockerfile(src, opts);
  } catch (e) {
    assert.ok(e instanceof DockerfileError, `not a DockerfileError: ${String(e)}`);
    return e;
  }
  assert.fail(`no error for ${JSON.stringify(src)}`);
}

const errorCases: [string, number, string | RegExp][] = [
  // directives
  ['# escape=\\\n# escape=`\nFROM a', 2, 'only one escape parser directive can be used'],
  ['# syntax=docker/dockerfile:1\n# SYNTAX=docker/dockerfile:1\nFROM a', 2, 'only one syntax parser directive can be used'],
  ['# escape=x\nFROM a', 1, "invalid escape token 'x' does not match ` or \\"],
  ['# syntax=example.com/my/frontend:1\nFROM a', 1, /^unsupported frontend "example.com\/my\/frontend:1": only the built-in Dockerfile frontend is available$/],
  ['# syntax=docker/dockerfile:2\nFROM a', 1, /only the built-in Dockerfile frontend/],
  ['# syntax=docker/dockerfile:1@sha256:abc\nFROM a', 1, /only the built-in Dockerfile frontend/],
  // file level
  ['', 1, 'the Dockerfile (Dockerfile) cannot be empty'],
  ['# just a comment\n\n   \n', 3, 'file with no instructions'],
  // unknown instruction
  ['FROM a\nRUNN x', 2, 'unknown instruction: RUNN (did you mean RUN?)'],
  ['FROM a\n\ncopyy a b', 3, 'unknown instruction: copyy (did you mean copy?)'],
  ['FROM a\nFROMM b', 2, 'unknown instruction: FROMM (did you mean FROM?)'],
  ['FROM a\nXYZZY x', 2, 'unknown instruction: XYZZY'],
  // JSON
  ['FROM a\nCMD ["a", 1]', 2, 'when using JSON array syntax, arrays must be comprised of strings only'],
  ['FROM a\nCOPY ["a", ["b"]]', 2, 'when using JSON array syntax, arrays must be comprised of strings only'],
  ['FROM a\nHEALTHCHECK CMD [true]', 2, 'when using JSON array syntax, arrays must be comprised of strings only'],
  ['FROM a\nSHELL /bin/sh -c', 2, 'SHELL requires the arguments to be in JSON form'],
  ['FROM a\nSHELL ["/bin/sh", -c]', 2, 'SHELL requires the arguments to be in JSON form'],
  ['FROM a\nSHELL []', 2, 'SHELL requires at least one argument'],
  // FROM
  ['FROM', 1, 'FROM requires either one or three arguments'],
  ['FROM a b', 1, 'FROM requires either one or three arguments'],
  ['FROM a b c', 1, 'FROM requires either one or three arguments'],
  ['FROM a AS b c', 1, 'FROM requires either one or three arguments'],
  ['FROM a AS 1st', 1, 'invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
  ['FROM a AS b@d', 1, 'invalid name for build stage: "b@d", name can\'t start with a number or contain symbols'],
  // check order within an instruction: these count arguments before reading flags
  ['FROM --platfrm=x a b', 1, 'FROM requires either one or three arguments'],
  ['FROM a\nCOPY --frm=x a', 2, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
  ['FROM a\nUSER --x', 2, 'USER requires exactly one argument'],
  ['FROM a\nENV --x', 2, 'unknown flag: --x'],
  // arguments
  ['FROM a\nCOPY a', 2, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
  ['FROM a\nADD\t   ', 2, 'ADD requires at least two arguments, but only one was provided. Destination could not be determined'],
  ['FROM a\nCOPY <<EOF\nx\nEOF', 2, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
  ['FROM a\nENV', 2, 'ENV requires at least one argument'],
  ['FROM a\nENV x', 2, 'ENV must have two arguments'],
  ['FROM a\nLABEL x', 2, 'LABEL must have two arguments'],
  ['FROM a\nENV a=b c', 2, 'Syntax error - can\'t find = in "c". Must be of the form: name=value'],
  ['FROM a\nLABEL a=b "c d"', 2, 'Syntax error - can\'t find = in "\\"c d\\"". Must be of the form: name=value'],
  ['FROM a\nENV =x', 2, 'ENV names can not be blank'],
  ['FROM a\nLABEL =x', 2, 'LABEL names can not be blank'],
  ['FROM a\nLABEL', 2, 'LABEL requires at least one argument'],
  ['ARG', 1, 'ARG requires at least one argument'],
  ['ARG =1\nFROM a', 1, 'ARG names can not be blank'],
  ['FROM a\nUSER', 2, 'USER requires exactly one argument'],
  ['FROM a\nWORKDIR   ', 2, 'WORKDIR requires exactly one argument'],
  ['FROM a\nSTOPSIGNAL', 2, 'STOPSIGNAL requires exactly one argument'],
  ['FROM a\nMAINTAINER', 2, 'MAINTAINER requires exactly one argument'],
  ['FROM a\nEXPOSE', 2, 'EXPOSE requires at least one argument'],
  ['FROM a\nVOLUME', 2, 'VOLUME requires at least one argument'],
  ['FROM a\nVOLUME ["/a", ""]', 2, 'VOLUME specified can not be an empty string'],
  // ONBUILD
  ['FROM a\nONBUILD', 2, 'ONBUILD requires at least one argument'],
  ['FROM a\nONBUILD ONBUILD RUN x', 2, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  ['FROM a\nonbuild onbuild RUN x', 2, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  ['FROM a\nONBUILD FROM b', 2, "FROM isn't allowed as an ONBUILD trigger"],
  ['FROM a\nONBUILD MAINTAINER me', 2, "MAINTAINER isn't allowed as an ONBUILD trigger"],
  // HEALTHCHECK
  ['FROM a\nHEALTHCHECK', 2, 'HEALTHCHECK requires at least one argument'],
  ['FROM a\nHEALTHCHECK NONE x', 2, 'HEALTHCHECK NONE takes no arguments'],
  ['FROM a\nHEALTHCHECK CMDD x', 2, 'Unknown type "CMDD" in HEALTHCHECK (try CMD)'],
  ['FROM a\nHEALTHCHECK CMD', 2, 'Missing command after HEALTHCHECK CMD'],
  ['FROM a\nHEALTHCHECK --interval=5 CMD x', 2, 'time: missing unit in duration "5"'],
  ['FROM a\nHEALTHCHECK --interval=5x CMD x', 2, 'time: unknown unit "x" in duration "5x"'],
  ['FROM a\nHEALTHCHECK --interval=abc CMD x', 2, 'time: invalid duration "abc"'],
  ['FROM a\nHEALTHCHECK --retries=99999999999 CMD x', 2, 'strconv.ParseInt: parsing "99999999999": value out of range'],
  ['FROM a\nHEALTHCHECK --timeout=-1s CMD x', 2, 'Interval "timeout" cannot be less than 1ms'],
  ['FROM a\nHEALTHCHECK --start-period=10us CMD x', 2, 'Interval "start-period" cannot be less than 1ms'],
  ['FROM a\nHEALTHCHECK --retries=x CMD x', 2, 'strconv.ParseInt: parsing "x": invalid syntax'],
  ['FROM a\nHEALTHCHECK --retries=-1 CMD x', 2, '--retries cannot be negative (-1)'],
  ['FROM a\nHEALTHCHECK --intervl=5s CMD x', 2, 'unknown flag: --intervl (did you mean interval?)'],
  // flags
  ['FROM a\nCOPY --frm=a b c', 2, 'unknown flag: --frm (did you mean from?)'],
  ['FROM a\nCOPY --bogus a b', 2, 'unknown flag: --bogus'],
  ['FROM a\nADD --from=a b c', 2, 'unknown flag: --from (--from is not allowed on ADD)'],
  ['FROM a\nMAINTAINER --boo joe', 2, 'unknown flag: --boo'],
  ['FROM a\nCMD --help', 2, 'unknown flag: --help'],
  ['FROM a\nENV --x=1 a=b', 2, 'unknown flag: --x'],
  ['FROM --platfrm=linux/amd64 a', 1, 'unknown flag: --platfrm (did you mean platform?)'],
  ['FROM a\nRUN --mount x', 2, 'missing a value on flag: --mount'],
  ['FROM a\nCOPY --from a b', 2, 'missing a value on flag: --from'],
  ['FROM a\nCOPY --link= a b', 2, 'missing a value on flag: --link'],
  ['FROM a\nCOPY --link=yes a b', 2, 'expecting boolean value for flag --link, not: yes'],
  ['FROM a\nCOPY --from=a --from=b c d', 2, 'duplicate flag specified: --from'],
  ['FROM a\nRUN --network=none --network=host x', 2, 'duplicate flag specified: --network'],
  ['FROM a\nRUN --device=/dev/fuse x', 2, /^unknown flag: --device \(RUN --device is not available in Dockerfile syntax docker\/dockerfile:1; it is a labs feature\)$/],
  ['# syntax=docker/dockerfile:1.3\nFROM a\nCOPY --link a b', 3, /^unknown flag: --link \(COPY --link is not available in Dockerfile syntax docker\/dockerfile:1.3\)$/],
  ['# syntax=docker/dockerfile:1.7\nFROM a\nCOPY --parents a b', 3, /^unknown flag: --parents/],
  ['# syntax=docker/dockerfile:1.18\nFROM a\nCOPY --exclude=x a b', 3, /^unknown flag: --exclude/],
  ['# syntax=docker/dockerfile:1.1\nFROM a\nRUN --mount=type=cache,target=/c x', 3, /^unknown flag: --mount/],
  ['FROM a\nRUN \\\n  --frm=x \\\n  echo', 2, 'unknown flag: --frm'],
  ['FROM a\nCMD ["a", \\\n 1]', 2, 'when using JSON array syntax, arrays must be comprised of strings only'],
  ['# syntax=docker/dockerfile:1.6-labs\nFROM a\nCOPY --exclude=x a b', 3, /^unknown flag: --exclude/],
  // heredocs
  ['FROM a\nRUN <<EOF\nabc\n', 2, 'unterminated heredoc EOF'],
  ['FROM a\nRUN <<EOF <<EOT\nx\nEOF\ny\n', 2, 'unterminated heredoc EOT'],
  ['FROM a\nRUN <<-EOF\nx\n  EOF\n', 2, 'unterminated heredoc EOF'],
];

for (const [src, line, message] of errorCases) {
  test(`error line ${line}: ${JSON.stringify(src)}`, () => {
    const e = err(src);
    assert.equal(e.line, line);
    assert.equal(e.file, 'Dockerfile');
    if (typeof message === 'string') assert.equal(e.reason, message);
    else assert.match(e.reason, message);
    assert.equal(e.message, `Dockerfile:${line}: ${e.reason}`);
  });
}

test('errors carry the file name, the offending text, the line range and a hint', () => {
  const e = err('FROM a\nRUN \\\n  --frm=x \\\n  echo', { filename: 'build/Dockerfile.dev' });
  assert.equal(e.message, 'build/Dockerfile.dev:2: unknown flag: --frm');
  assert.equal(e.line, 2);
  assert.equal(e.endLine, 4);
  assert.equal(e.snippet, 'RUN   --frm=x   echo');
  assert.match(e.hint ?? '', /RUN accepts --mount/);
  const u = err('FROM a\nRUNN x');
  assert.equal(u.snippet, 'RUNN x');
  assert.match(u.hint ?? '', /FROM, RUN|RUN/);
  assert.match(err('# syntax=foo/bar\nFROM a').hint ?? '', /remove the "# syntax=" line or change it to "# syntax=docker\/dockerfile:1"/);
});

test('parse errors of the whole file come before instruction errors (as BuildKit)', () => {
  // line 2 is an unknown instruction, but line 3's malformed ENV is found first
  const e = err('FROM a\nRUNN x\nENV y');
  assert.equal(e.line, 3);
  assert.equal(e.reason, 'ENV must have two arguments');
});

test('warnings: build checks that need only the file, with BuildKit rule names', () => {
  const p = parseDockerfile(
    [
      'FROM a as b', // 1 FromAsCasing
      'MAINTAINER me', // 2 MaintainerDeprecated
      'from c AS d', // 3 FromAsCasing, ConsistentInstructionCasing
      'FROM e AS Builder', // 4 StageNameCasing
      'FROM e AS scratch', // 5 ReservedStageName
      'CMD echo a', // 6 MultipleInstructionsDisallowed (JSONArgsRecommended is the converter's: it needs the stage's SHELL)
      'CMD ["b"]', // 7
      'ENV k v', // 8 LegacyKeyValueFormat
      'HEALTHCHECK NONE', // 9
      'FROM f', // 10: a new stage resets the counts
      'CMD ["c"]',
      'HEALTHCHECK NONE',
    ].join('\n'),
  );
  assert.deepEqual(
    p.warnings.map((w) => [w.line, w.rule]),
    [
      [1, 'FromAsCasing'],
      [2, 'MaintainerDeprecated'],
      [3, 'FromAsCasing'],
      [3, 'ConsistentInstructionCasing'],
      [4, 'StageNameCasing'],
      [5, 'ReservedStageName'],
      [6, 'MultipleInstructionsDisallowed'],
      [8, 'LegacyKeyValueFormat'],
    ],
  );
  const text = Object.fromEntries(p.warnings.map((w) => [w.rule, w.message]));
  assert.equal(p.warnings[0].message, "'as' and 'FROM' keywords' casing do not match");
  assert.equal(p.warnings[2].message, "'AS' and 'from' keywords' casing do not match");
  assert.equal(text.MaintainerDeprecated, 'Maintainer instruction is deprecated in favor of using label');
  assert.equal(text.ConsistentInstructionCasing, "Command 'from' should match the case of the command majority (uppercase)");
  assert.equal(text.StageNameCasing, "Stage name 'Builder' should be lowercase");
  assert.equal(text.ReservedStageName, 'Stage name should not use the same name as reserved stage "scratch"');
  assert.equal(text.MultipleInstructionsDisallowed, 'Multiple CMD instructions should not be used in the same stage because only the last one will be used');
  assert.equal(text.LegacyKeyValueFormat, '"ENV key=value" should be used instead of legacy "ENV key value" format');
});

test('ConsistentInstructionCasing counts and checks stages only, not the ARGs before the first FROM (BuildKit)', () => {
  const rules = (src: string) => parseDockerfile(src).warnings.map((w) => [w.line, w.rule]);
  assert.deepEqual(rules('arg V=1\nFROM a\nRUN b\n'), []);
  assert.deepEqual(rules('ARG V=1\nARG W=2\nARG X=3\nfrom a\nrun b\nRUN c\n'), [[6, 'ConsistentInstructionCasing']]);
});

test('# check= skips rules (the parse drops them; error=true is the converter\'s, test/frontend/checks)', () => {
  const body = 'FROM a as b\nMAINTAINER me\n';
  assert.deepEqual(parseDockerfile(`# check=skip=all\n${body}`).warnings, []);
  assert.deepEqual(
    parseDockerfile(`# check=skip=FromAsCasing\n${body}`).warnings.map((w) => w.rule),
    ['MaintainerDeprecated'],
  );
  assert.deepEqual(parseDockerfile(`# check=error=true\n${body}`).warnings.map((w) => w.rule), ['FromAsCasing', 'MaintainerDeprecated']);
});

test('Go durations for HEALTHCHECK options', async () => {
  const { parseGoDuration } = await import('../../lib/frontend/dockerfile/index');
  assert.equal(parseGoDuration('30s'), 30e9);
  assert.equal(parseGoDuration('1h30m'), 5400e9);
  assert.equal(parseGoDuration('1.5s'), 1.5e9);
  assert.equal(parseGoDuration('300ms'), 300e6);
  assert.equal(parseGoDuration('2us'), 2000);
  assert.equal(parseGoDuration('-2m'), -120e9);
  assert.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '5', 's', '1x', '1.s.', '--1s']) assert.equal(parseGoDuration(bad), undefined, bad);
});

test('pathological inputs finish (no quadratic regex scans)', () => {
  // lines stay under BuildKit's 64 KiB line limit (see the next test)
  const spaces = ' '.repeat(16_000);
  assert.throws(() => parseDockerfile(`# escape=\\${spaces}x\nFROM a`), /invalid escape token/);
  assert.equal(parseDockerfile(`#${spaces}syntax${spaces}=${spaces}docker/dockerfile:1${spaces}\nFROM a`).directives[0].value, 'docker/dockerfile:1');
  assert.equal(parseDockerfile(`FROM a\nRUN a${'\\ '.repeat(30_000)}b`).instructions.length, 2);
  assert.equal(parseDockerfile(`FROM a\nRUN ${'x '.repeat(20_000)}\\${spaces}\n y`).instructions.length, 2);
});

test('a line over 65535 bytes fails the parse, as BuildKit\'s line scanner does', () => {
  const fits = 'a'.repeat(65535 - 'LABEL k='.length);
  assert.equal(parseDockerfile(`FROM a\nLABEL k=${fits}\n`).instructions.length, 2);
  const e = err(`FROM a\nLABEL k=${fits}b\nRUN x`);
  assert.equal(e.reason, 'dockerfile line greater than max allowed size of 65535');
  assert.equal(e.line, 2);
  // bytes, not characters: 'é' is two bytes in UTF-8
  assert.throws(() => parseDockerfile(`FROM a\nLABEL k=${'é'.repeat(33_000)}`), /greater than max allowed size of 65535/);
  // nothing read before it: no instructions
  assert.throws(() => parseDockerfile(`LABEL k=${fits}bb`), /file with no instructions/);
});

test('DockerfileError is an ImgError (the CLI prints message and hint)', async () => {
  const { ImgError } = await import('../../lib/util/errors');
  const e = err('FROM a\nRUNN x');
  assert.ok(e instanceof ImgError);
  assert.equal(e.exitCode, 1);
  assert.equal(e.name, 'DockerfileError');
  assert.ok(e.hint);
  assert.equal(e.detail, 'Dockerfile:2: RUNN x');
});

test('deep nesting gives errors, not stack overflows', () => {
  const e = err(`FROM a\n${'ONBUILD '.repeat(8_000)}RUN x`);
  assert.equal(e.reason, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  assert.equal(parseDockerfile(`FROM a\nCMD ${'['.repeat(60_000)}`).instructions[1].json, false);
});

test('validate: false stops at the syntax pass (BuildKit parser level)', () => {
  const src = [
    'COPY --user=me --doit=true foo /tmp/',
    'COPY --doit=true -- foo /tmp/',
    'CMD --doit -- [ ]',
    'HEALTHCHECK CMD',
    'HEALTHCHECK CONNECT TCP 7000',
    'NOTANINSTRUCTION x y',
    'FROM a b c d',
  ].join('\n');
  const p = parseDockerfile(src, { validate: false });
  assert.deepEqual(
    p.instructions.map((i) => [i.keyword, i.flags.map((f) => f.raw), i.json, i.args]),
    [
      ['COPY', ['--user=me', '--doit=true'], false, ['foo', '/tmp/']],
      ['COPY', ['--doit=true'], false, ['foo', '/tmp/']],
      ['CMD', ['--doit'], true, []],
      ['HEALTHCHECK', [], false, ['CMD']],
      ['HEALTHCHECK', [], false, ['CONNECT', 'TCP 7000']],
      ['NOTANINSTRUCTION', [], false, ['']], // BuildKit keeps no arguments for an unknown word
      ['FROM', [], false, ['a', 'b', 'c', 'd']],
    ],
  );
  // syntax-level errors still apply
  assert.throws(() => parseDockerfile('ENV PATH', { validate: false }), /ENV must have two arguments/);
  assert.throws(() => parseDockerfile('CMD [ "echo", [ "nested json" ] ]', { validate: false }), /arrays must be comprised of strings only/);
  assert.throws(() => parseDockerfile('RUN <<EOF\nx', { validate: false }), /unterminated heredoc/);
});

test('resolveSyntax / syntaxOf / parseCheckDirective', async () => {
  const { resolveSyntax, syntaxOf, parseCheckDirective } = await import('../../lib/frontend/dockerfile/index');
  assert.deepEqual(resolveSyntax('docker/dockerfile:1.7-labs'), { image: 'docker/dockerfile:1.7-labs', version: [1, 7, 0], labs: true, digest: undefined });
  assert.deepEqual(resolveSyntax('docker/dockerfile:1.4.3'), { image: 'docker/dockerfile:1.4.3', version: [1, 4, 3], labs: false, digest: undefined });
  assert.equal(resolveSyntax('docker/dockerfile:1')?.version, undefined);
  assert.equal(resolveSyntax('docker/dockerfile:1-labs')?.labs, true);
  assert.equal(resolveSyntax('docker/dockerfile:1.8.0-rc1')?.version?.[1], 8);
  assert.equal(resolveSyntax(`docker/dockerfile@sha256:${'b'.repeat(64)}`)?.digest, `sha256:${'b'.repeat(64)}`);
  for (const bad of ['docker/dockerfile:2', 'docker/dockerfile:0.9', 'tonistiigi/dockerfile:1', 'docker/dockerfile:1.x', 'localhost:5000/docker/dockerfile:1']) {
    assert.equal(resolveSyntax(bad), undefined, bad);
  }
  assert.equal(syntaxOf(parseDockerfile('FROM a')), undefined);
  assert.equal(syntaxOf(parseDockerfile('# syntax=docker/dockerfile:1.6\nFROM a'))?.version?.[1], 6);
  assert.deepEqual(parseCheckDirective('skip=JSONArgsRecommended,StageNameCasing;error=true'), { skip: ['JSONArgsRecommended', 'StageNameCasing'], error: true, experimental: [] });
  assert.deepEqual(parseCheckDirective('error=false'), { skip: [], error: false, experimental: [] });
  assert.deepEqual(parseCheckDirective('experimental=all'), { skip: [], error: false, experimental: ['all'] });
});

test('extractFlags and parseWords (BuildKit word rules)', async () => {
  const { extractFlags, parseWords } = await import('../../lib/frontend/dockerfile/index');
  assert.deepEqual(extractFlags('--a=1 --b="x y" --c=\'q\' rest of line'), { rest: 'rest of line', flags: ['--a=1', '--b=x y', '--c=q'] });
  assert.deepEqual(extractFlags('--a=x\\ y z'), { rest: 'z', flags: ['--a=x y'] });
  assert.deepEqual(extractFlags('--a -- --b'), { rest: ' --b', flags: ['--a'] });
  assert.deepEqual(extractFlags('--a'), { rest: '', flags: ['--a'] });
  assert.deepEqual(extractFlags('-a --b'), { rest: '-a --b', flags: [] });
  assert.deepEqual(extractFlags('--a="unterminated'), { rest: '', flags: ['--a=unterminated'] });
  assert.deepEqual(parseWords('a "b c" d\\ e \'f g\'', '\\'), ['a', '"b c"', 'd\\ e', "'f g'"]);
  assert.deepEqual(parseWords('a`  b', '`'), ['a` ', 'b']);
  assert.deepEqual(parseWords('  ', '\\'), []);
  assert.deepEqual(parseWords('"" x', '\\'), ['""', 'x']);
});
