// `img/frontend` (package.json exports → lib/frontend/index.ts compiled) in a
// browser: bundled by esbuild for the browser platform, loaded into headless
// Chromium (Debian's chromium; this machine has no outside network, so
// everything that would reach it is off) from a file:// page that writes its
// result into the DOM, read back with --dump-dom. The page parses and converts
// a Dockerfile with dockerfileToGraph; the graph must equal the one Node
// computes from the same sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { dockerfileToGraph, parsePlatform, type ConvertOptions } from '../../lib/frontend/index';

const ROOT = path.resolve(__dirname, '..', '..');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((f) => fs.existsSync(f));

const DOCKERFILE = `# syntax=docker/dockerfile:1
FROM alpine:3.19 AS base
ARG GREETING=hello
ENV G=$GREETING
RUN echo "$G" > /g
FROM base
WORKDIR /app
COPY a.txt ./
CMD ["cat", "/g"]
`;

// The page and Node call it with the same options; the resolver is what a
// browser caller writes: the registry work (or a fixed answer) is theirs.
const OPTIONS_SOURCE = `{
  buildArgs: { GREETING: 'hi' },
  targetPlatform: img.parsePlatform('linux/arm64'),
  buildPlatform: img.parsePlatform('linux/amd64'),
  resolveImageConfig: async (ref, platform) => ({
    ref: 'docker.io/library/alpine:3.19',
    digest: 'sha256:' + 'a'.repeat(64),
    config: { architecture: platform.architecture, os: platform.os, config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] }, rootfs: { type: 'layers', diff_ids: ['sha256:' + 'b'.repeat(64)] }, history: [{ created_by: 'base layer' }] },
  }),
}`;

test('img/frontend names the compiled lib/frontend/index.ts in the exports map', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8'));
  const compiled = (ts: string, ext: string) => `./${path.posix.join(tsconfig.compilerOptions.outDir, ts.replace(/\.ts$/, ext))}`;
  assert.deepEqual(pkg.exports['./frontend'], { types: compiled('lib/frontend/index.ts', '.d.ts'), default: compiled('lib/frontend/index.ts', '.js') });
  assert.equal(pkg.exports['.'].default, `./${pkg.main}`);
});

test('img/frontend runs in headless Chromium: a Dockerfile parsed and converted to the same graph as in Node', { skip: CHROMIUM ? false : 'no chromium (Debian: apt-get install chromium; .ci/setup-host installs it)', timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-browser-'));
  try {
    const bundle = await build({
      stdin: { contents: `export * from ${JSON.stringify(path.join(ROOT, 'lib', 'frontend', 'index.ts'))};`, resolveDir: ROOT, sourcefile: 'entry.ts', loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'img',
      target: 'es2020',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(bundle.metafile.inputs);
    assert.ok(inputs.every((i) => !i.startsWith('node:') && !i.includes('node_modules')), inputs.join(', '));
    const script = bundle.outputFiles[0].text;
    const page = `<!doctype html><meta charset="utf-8"><title>img/frontend</title><pre id="out">pending</pre>
<script>${script.replace(/<\/script/gi, '<\\/script')}</script>
<script>
(async () => {
  const out = document.getElementById('out');
  try {
    const graph = await img.dockerfileToGraph(${JSON.stringify(DOCKERFILE)}, ${OPTIONS_SOURCE});
    out.textContent = JSON.stringify({ ok: true, userAgent: navigator.userAgent, graph });
  } catch (e) {
    out.textContent = JSON.stringify({ ok: false, error: String((e && e.stack) || e) });
  }
})();
</script>`;
    fs.writeFileSync(path.join(dir, 'index.html'), page);
    const r = spawnSync(
      CHROMIUM!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-extensions',
        '--no-first-run',
        '--no-default-browser-check',
        `--user-data-dir=${path.join(dir, 'profile')}`,
        // Virtual time runs every task the page queued before the DOM is dumped.
        '--virtual-time-budget=10000',
        '--dump-dom',
        `file://${path.join(dir, 'index.html')}`,
      ],
      { encoding: 'utf8', timeout: 150_000, env: { ...process.env, HOME: dir } },
    );
    assert.equal(r.status, 0, r.stderr);
    const m = /<pre id="out">([\s\S]*?)<\/pre>/.exec(r.stdout);
    assert.ok(m, `no result in the dumped page:\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(-2000)}`);
    const text = m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    const result = JSON.parse(text);
    assert.equal(result.ok, true, result.error);
    assert.match(result.userAgent, /HeadlessChrome|Chrome/);

    // What the browser computed, explicitly, then all of it against Node.
    const graph = result.graph;
    assert.deepEqual(graph.platform, { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(graph.config.config.Cmd, ['cat', '/g']);
    assert.equal(graph.config.config.WorkingDir, '/app');
    assert.ok(graph.config.config.Env.includes('G=hi'), graph.config.config.Env.join(' '));
    type V = { kind: string; name: string; ref?: string; resolvedDigest?: string; args?: string[]; env?: string[]; platform?: unknown };
    const vertices = Object.values(graph.vertices as Record<string, V>);
    assert.deepEqual(vertices.map((v) => `${v.kind} ${v.name}`).sort(), [
      'exec [base 2/2] RUN echo "hi" > /g',
      'file [stage-1 1/2] WORKDIR /app',
      'file [stage-1 2/2] COPY a.txt ./',
      'image [base 1/2] FROM docker.io/library/alpine:3.19@sha256:' + 'a'.repeat(64),
      'local [internal] load build context',
    ]);
    const base = vertices.find((v) => v.kind === 'image')!;
    assert.equal(base.resolvedDigest, 'sha256:' + 'a'.repeat(64));
    const run = vertices.find((v) => v.kind === 'exec')!;
    assert.deepEqual(run.args, ['/bin/sh', '-c', 'echo "$G" > /g']);
    assert.ok(run.env!.includes('G=hi'));
    assert.deepEqual(run.platform, { os: 'linux', architecture: 'arm64' });
    assert.match(graph.root.vertex, /^sha256:[0-9a-f]{64}$/);

    const img = { parsePlatform };
    const options = new Function('img', `return ${OPTIONS_SOURCE};`)(img) as ConvertOptions;
    const inNode = await dockerfileToGraph(DOCKERFILE, options);
    assert.deepEqual(graph, JSON.parse(JSON.stringify(inNode)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
