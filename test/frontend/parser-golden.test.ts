// Golden files: each fixtures/dockerfiles/*.Dockerfile parses to the reviewed
// *.expected.json beside it (instructions, lines, flags, forms, heredocs,
// warnings). Regenerate after an intended change with UPDATE_GOLDEN=1 and
// review the diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDockerfile } from '../../lib/frontend/dockerfile/index';

const DIR = path.join(__dirname, 'fixtures', 'dockerfiles');

function summary(file: string, text: string) {
  const p = parseDockerfile(text, { filename: file });
  return {
    escapeToken: p.escapeToken,
    directives: p.directives,
    instructions: p.instructions.map((i) => ({
      lines: [i.startLine, i.endLine],
      keyword: i.keyword,
      flags: i.flags,
      json: i.json,
      args: i.args,
      ...(i.keyValues ? { keyValues: i.keyValues } : {}),
      ...(i.heredocs.length ? { heredocs: i.heredocs } : {}),
      ...(i.onbuild ? { onbuild: { keyword: i.onbuild.keyword, args: i.onbuild.args } } : {}),
    })),
    warnings: p.warnings,
  };
}

for (const f of readdirSync(DIR).filter((x) => x.endsWith('.Dockerfile')).sort()) {
  test(`golden: ${f}`, () => {
    const got = summary(f, readFileSync(path.join(DIR, f), 'utf8'));
    const expectedPath = path.join(DIR, f.replace(/\.Dockerfile$/, '.expected.json'));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(expectedPath, JSON.stringify(got, null, 2) + '\n');
    assert.deepEqual(got, JSON.parse(readFileSync(expectedPath, 'utf8')));
  });
}
