// Property test: the parser, expander and .dockerignore reader throw nothing
// but their own error types and never hang, on 5,000 random and mutated
// Dockerfiles from a fixed-seed PRNG. The work runs in a worker that reports
// after each case; a case that reports nothing for a long time (generous,
// not a performance assertion) is a hang, and the worker is terminated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const FIXTURES = path.join(__dirname, 'fixtures', 'dockerfiles');
const HANG_MS = 20_000;

test('fuzz: 5,000 random and mutated Dockerfiles', async () => {
  const seeds = readdirSync(FIXTURES).filter((f) => f.endsWith('.Dockerfile')).sort().map((f) => readFileSync(path.join(FIXTURES, f), 'utf8'));
  assert.ok(seeds.length >= 3);
  // The worker loads the TypeScript worker file through tsx's CommonJS API.
  const boot = `require('tsx/cjs/api').require(${JSON.stringify(path.join(__dirname, 'fuzz.worker.ts'))}, ${JSON.stringify(__filename)});`;
  const worker = new Worker(boot, { eval: true, workerData: { seeds, cases: 5000, seed: 0x1d0c4e11 } });
  let completed = 0;
  let lastText = '';
  const outcome = await new Promise<{ ok: boolean; why?: string }>((resolve) => {
    let timer = setTimeout(onHang, HANG_MS);
    function onHang(): void {
      resolve({ ok: false, why: `no progress for ${HANG_MS} ms after case ${completed}; next input follows the last one: ${JSON.stringify(lastText)}` });
    }
    worker.on('message', (m: { kind: string; index?: number; text?: string; error?: string }) => {
      clearTimeout(timer);
      if (m.kind === 'progress') {
        completed = m.index! + 1;
        lastText = m.text!;
        timer = setTimeout(onHang, HANG_MS);
      } else if (m.kind === 'fail') {
        resolve({ ok: false, why: `case ${m.index} threw ${m.error}\ninput: ${JSON.stringify(m.text)}` });
      } else resolve({ ok: true });
    });
    worker.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, why: `worker error: ${String(e)}` });
    });
  });
  await worker.terminate();
  assert.ok(outcome.ok, outcome.why);
  assert.equal(completed, 5000);
});
