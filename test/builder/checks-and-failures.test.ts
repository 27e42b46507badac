// What a docker user sees around a build: a failing step named by its
// Dockerfile lines (BuildKit's context block and final ERROR line), the build
// checks (warnings during and after a build, `--check`, `# check=error=true`),
// `--progress=rawjson` as BuildKit's SolveStatus stream, and the closing line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip } from './helpers';

test('img build (rootless): failures name Dockerfile:N with BuildKit\'s context; checks warn, --check reports, error=true fails', { skip, timeout: 240_000 }, async (t) => {
  const e = await setup({
    'fail/Dockerfile': 'FROM busybox\nENV A=1\nRUN echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; \\\n    echo out2; exit 3\nCMD ["sh"]\n',
    'copy/Dockerfile': 'FROM busybox\n# the file is not in the context\nCOPY nothere.txt /x\nRUN true\n',
    'warn/Dockerfile': 'FROM busybox as base\nWORKDIR app\nCMD echo hi\n',
    'clean/Dockerfile': 'FROM busybox\nCMD ["sh"]\n',
    'strict/Dockerfile': '# check=error=true\nFROM busybox\nCMD echo hi\n',
    'parse/Dockerfile': 'FROM busybox\nENV A=1\nRUNN foo \\\n  bar\nCMD ["x"]\n',
  });
  t.after(() => cleanup(e.root));
  const ctx = (name: string) => path.join(e.ctx, name);

  // A failing RUN over two lines: its output in the order written, dated from
  // the step's start; its lines marked; BuildKit's error line last.
  const run = await build(e, [ctx('fail')]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /------\n > \[2\/2\] RUN echo out1; sleep 0\.2; echo err1 >&2; sleep 0\.2;     echo out2; exit 3:\n\d\.\d{3} out1\n\d\.\d{3} err1\n\d\.\d{3} out2\n------\n/);
  assert.ok(
    run.stderr.endsWith(
      [
        'Dockerfile:3',
        '--------------------',
        '   2 |     ENV A=1',
        '   3 | >>> RUN echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; \\',
        '   4 | >>>     echo out2; exit 3',
        '   5 |     CMD ["sh"]',
        '--------------------',
        'ERROR: failed to solve: process "/bin/sh -c echo out1; sleep 0.2; echo err1 >&2; sleep 0.2;     echo out2; exit 3" did not complete successfully: exit code: 3',
        '',
      ].join('\n'),
    ),
    run.stderr,
  );
  // -q keeps the step's block and the Dockerfile lines (no progress otherwise).
  const quiet = await build(e, ['-q', ctx('fail')]);
  assert.equal(quiet.code, 1);
  assert.match(quiet.stderr, /^------\n > \[2\/2\] RUN echo out1;[^\n]*:\nout1\nerr1\nout2\n------\nDockerfile:3\n/);

  // A failing COPY is named the same way (the block even without output).
  const copy = await build(e, [ctx('copy')]);
  assert.equal(copy.code, 1);
  assert.match(copy.stderr, /------\n > \[2\/3\] COPY nothere\.txt \/x:\n------\nDockerfile:3\n--------------------\n   1 \|     FROM busybox\n   2 \|     # the file is not in the context\n   3 \| >>> COPY nothere\.txt \/x\n   4 \|     RUN true\n   5 \|     \n--------------------\nERROR: failed to solve: .*nothere\.txt.*not found/);

  // A Dockerfile error shows its lines the same way, above the error.
  const parse = await build(e, [ctx('parse')]);
  assert.equal(parse.code, 1);
  assert.ok(
    parse.stderr.includes(
      ['Dockerfile:3', '--------------------', '   2 |     ENV A=1', '   3 | >>> RUNN foo \\', '   4 | >>>   bar', '   5 |     CMD ["x"]', '--------------------', 'Error: Dockerfile:3: unknown instruction: RUNN (did you mean RUN?)'].join('\n'),
    ),
    parse.stderr,
  );

  // Warnings: under the Dockerfile's step, then summarised after the build;
  // a build that writes files says where.
  const out = path.join(e.root, 'out');
  const warned = await build(e, ['-o', `type=local,dest=${out}`, ctx('warn')]);
  assert.equal(warned.code, 0, warned.stderr);
  // The file's own checks while it loads (before its DONE, as BuildKit), the
  // converter's when it has run; each once.
  assert.match(warned.stderr, /^#1 transferring dockerfile: \d+B [\d.]+s done\n#1 WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match \(line 1\)\n#1 DONE /m);
  assert.match(warned.stderr, /^#1 WARN: WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base image changes \(line 2\)$/m);
  assert.equal(warned.stderr.match(/^#1 WARN: /gm)?.length, 3, warned.stderr);
  assert.ok(
    warned.stderr.endsWith(
      '\n 3 warnings found (use --debug to expand):\n' +
        " - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)\n" +
        ' - WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base image changes (line 2)\n' +
        ' - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)\n',
    ),
    warned.stderr,
  );
  assert.equal(warned.stdout, `Successfully built files in ${out}\n`);
  assert.ok(fs.statSync(path.join(out, 'app')).isDirectory());

  // --check: the report on stdout, exit 1 when something was found; nothing built.
  const check = await build(e, ['--check', ctx('warn')]);
  assert.equal(check.code, 1, check.stderr);
  assert.ok(check.stdout.startsWith('Check complete, 3 warnings have been found!\n\nWARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'), check.stdout);
  assert.match(check.stdout, /\nWARNING: WorkdirRelativePath - https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/workdir-relative-path\/\nRelative workdir "app" can have unexpected results if the base image changes\nDockerfile:2\n--------------------\n   1 \|     FROM busybox as base\n   2 \| >>> WORKDIR app\n/);
  assert.doesNotMatch(check.stderr, /\[1\/2\] FROM|WORKDIR app\n#\d+ DONE/, 'no step runs');
  const clean = await build(e, ['--check', ctx('clean')]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(clean.stdout, 'Check complete, no warnings found.\n');

  // # check=error=true: the warnings first, then the build fails naming the rules.
  const strict = await build(e, [ctx('strict')]);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /#1 WARN: JSONArgsRecommended: .* \(line 3\)\n/);
  assert.match(strict.stderr, /Error: Dockerfile:3: lint violation found for rules: JSONArgsRecommended — /);
});

test('img build --progress=rawjson (rootless): one SolveStatus per line, digests, inputs, base64 logs, warnings', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN echo hello-raw && echo to-stderr >&2\nCMD echo hi\n' });
  t.after(() => cleanup(e.root));
  const r = await build(e, ['--progress', 'rawjson', '--no-cache', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  const seen = new Set<string>();
  let logs = '';
  let run: { digest: string; inputs?: string[]; started?: string; completed?: string } | undefined;
  let warning: { vertex: string; short: string; url: string; range: unknown } | undefined;
  for (const line of lines) {
    const s = JSON.parse(line);
    const keys = Object.keys(s);
    assert.equal(keys.length, 1, line);
    assert.ok(['vertexes', 'statuses', 'logs', 'warnings'].includes(keys[0]), line);
    for (const v of s.vertexes ?? []) {
      assert.match(v.digest, /^sha256:[0-9a-f]{64}$/);
      assert.match(v.started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      for (const i of v.inputs ?? []) assert.ok(seen.has(i), `input ${i} of ${v.name} was announced before`);
      seen.add(v.digest);
      if (v.name.includes('RUN echo hello-raw')) run = v;
    }
    for (const l of s.logs ?? []) {
      assert.ok(seen.has(l.vertex));
      logs += Buffer.from(l.data, 'base64').toString();
    }
    for (const st of s.statuses ?? []) assert.equal(typeof st.current, 'number');
    if (s.warnings) warning = s.warnings[0];
  }
  assert.ok(run?.completed && run.inputs?.length === 1, JSON.stringify(run));
  assert.match(logs, /hello-raw\n/);
  assert.match(logs, /to-stderr\n/);
  assert.ok(warning, 'the build check is in the stream');
  assert.equal(Buffer.from(warning.short, 'base64').toString(), 'JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)');
  assert.deepEqual(warning.range, [{ start: { line: 3 }, end: { line: 3 } }]);
  assert.doesNotMatch(r.stderr, /warnings? found/, 'no human summary in rawjson mode');
});
