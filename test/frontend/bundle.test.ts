// The frontend and the graph must stay pure TypeScript (no node: imports, no
// addon, no Buffer/process) so they can run in a browser or WASM host. Bundle
// them with esbuild for a neutral platform and run the parser from the bundle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(__dirname, '..', '..');
const FRONTEND = path.join(ROOT, 'lib', 'frontend', 'dockerfile');
const GRAPH = path.join(ROOT, 'lib', 'graph');

// Every .ts file under dir, its subfolders included (convert/, instructions/).
function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => path.join(dir, f));
}

async function bundle(contents: string, outfile: string) {
  return build({
    stdin: { contents, resolveDir: ROOT, sourcefile: 'entry.ts', loader: 'ts' },
    bundle: true,
    platform: 'neutral',
    format: 'esm',
    outfile,
    write: true,
    metafile: true,
    logLevel: 'silent',
  });
}

test('bundle: the parser, expander and matcher alone use no host APIs', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'img-bundle-'));
  try {
    const out = path.join(dir, 'parser.mjs');
    const r = await bundle(`export * from ${JSON.stringify(path.join(FRONTEND, 'index.ts'))};`, out);
    assert.deepEqual(r.errors, []);
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(inputs.every((i) => !i.startsWith('node:')), inputs.join(', '));
    const { readFileSync } = await import('node:fs');
    const code = readFileSync(out, 'utf8');
    assert.doesNotMatch(code, /\bBuffer\b|\bprocess\.|\brequire\(|from ["']node:/);
    const m = await import(pathToFileURL(out).href);
    const p = m.parseDockerfile('# syntax=docker/dockerfile:1\nFROM busybox AS b\nRUN <<EOF\necho $X\nEOF\n');
    assert.deepEqual(
      p.instructions.map((i: { keyword: string }) => i.keyword),
      ['FROM', 'RUN'],
    );
    assert.equal(p.instructions[1].heredocs[0].content, 'echo $X\n');
    assert.equal(m.expandWord('${X:-d}', new Map()).value, 'd');
    assert.equal(new m.PatternMatcher(['**/*.go', '!keep.go']).matches('a/b.go'), true);
    assert.throws(() => m.parseDockerfile('FROM a\nRUNN x'), (e: Error) => e instanceof m.DockerfileError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bundle: lib/frontend/dockerfile and lib/graph together, platform neutral', async () => {
  const files = [...tsFiles(FRONTEND), ...tsFiles(GRAPH)];
  const entry = files.map((f, i) => `export * as m${i} from ${JSON.stringify(f)};`).join('\n');
  const dir = mkdtempSync(path.join(tmpdir(), 'img-bundle-'));
  try {
    const out = path.join(dir, 'frontend-graph.mjs');
    let r;
    try {
      r = await bundle(entry, out);
    } catch (e) {
      // esbuild reports e.g. `Could not resolve "node:crypto"` for host imports
      const errs = (e as { errors?: { text: string; location?: { file: string } }[] }).errors ?? [];
      assert.fail(`bundle failed:\n${errs.map((x) => `${x.location?.file ?? ''}: ${x.text}`).join('\n') || String(e)}`);
    }
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(inputs.every((i) => !i.startsWith('node:')), inputs.join(', '));
    const m = await import(pathToFileURL(out).href);
    const idx = files.indexOf(path.join(FRONTEND, 'parser.ts'));
    const parsed = m[`m${idx}`].parseDockerfile('FROM scratch\nCOPY a /b\n');
    assert.equal(parsed.instructions.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
