// Solver figures: context checksum of a large context (cold vs the stat-keyed
// cache), and the scheduler's own overhead on a wide graph with no-op executors.
//   node --import tsx bench/solver.ts [files=20000]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import Benchmark from 'benchmark';
import { ChecksumCache, scanContext, SELECT_ALL } from '../lib/solver/checksum';
import { solve } from '../lib/solver/scheduler';
import type { ExecVertex, Vertex } from '../lib/graph/types';

async function time<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = process.hrtime.bigint();
  const v = await fn();
  console.log(`${label}: ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
  return v;
}

async function checksums(n: number): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-ctx-'));
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-state-'));
  try {
    for (let i = 0; i < n; i++) {
      const dir = path.join(root, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 50)));
    }
    console.log(`context: ${n} files in 100 dirs`);
    const cold = await time('checksum, cold (every file read)', async () => scanContext(root, SELECT_ALL, await ChecksumCache.open(state, root)));
    const warm = await time('checksum, warm (stat cache, nothing read)', async () => scanContext(root, SELECT_ALL, await ChecksumCache.open(state, root)));
    if (cold.digest !== warm.digest) throw new Error('digests differ');
    fs.appendFileSync(path.join(root, 'd7', 'f7.txt'), 'change');
    await time('checksum, one file changed', async () => scanContext(root, SELECT_ALL, await ChecksumCache.open(state, root)));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(state, { recursive: true, force: true });
  }
}

function wideGraph(width: number) {
  const vertices: Record<string, Vertex> = {};
  const id = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  const mk = (name: string, inputs: string[]): string => {
    const v: ExecVertex = {
      id: id(name),
      name,
      kind: 'exec',
      inputs: inputs.map((i) => ({ vertex: i, output: 0 })),
      rootfs: inputs.length ? 0 : -1,
      args: [name],
      env: [],
      cwd: '/',
      user: '',
      network: 'none',
      security: 'sandbox',
      mounts: [],
    };
    vertices[v.id] = v;
    return v.id;
  };
  const base = mk('base', []);
  const mids = Array.from({ length: width }, (_, i) => mk(`mid${i}`, [base]));
  const top = mk('top', mids);
  return { vertices, root: { vertex: top, output: 0 } };
}

async function scheduler(): Promise<void> {
  const g = wideGraph(500);
  const executors = { exec: { run: async () => ({ snapshot: null, layers: [] }) } };
  await new Promise<void>((resolve) => {
    new Benchmark.Suite()
      .add('solve 502-vertex graph, no-op executors', {
        defer: true,
        fn: (d: { resolve(): void }) => {
          solve(g, { executors, concurrency: 8 }).then(() => d.resolve());
        },
      })
      .on('cycle', (ev: { target: unknown }) => console.log(String(ev.target)))
      .on('complete', () => resolve())
      .run({ async: true });
  });
}

(async () => {
  await checksums(Number(process.argv[2] ?? 20000));
  await scheduler();
})();
