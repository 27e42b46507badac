// copyTree vs `cp -a` on a generated tree of 10,000 files (1–64 KiB, in 100
// directories, plus symlinks). Runs are interleaved after a warm-up of each,
// so both see the same page-cache state; the median of N runs is reported.
//   node --import tsx bench/copytree.ts [--runs 7] [--files 10000] [--threads N] [--dir /var/tmp]
// Writes bench/results/copytree.json.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon } from '../lib/host';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const RUNS = Number(arg('runs', '7'));
const FILES = Number(arg('files', '10000'));
const THREADS = process.argv.includes('--threads') ? Number(arg('threads', '0')) : undefined;
const BASE = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'img-bench-copytree-'));

function generate(root: string): number {
  let bytes = 0;
  const pool = crypto.randomBytes(64 * 1024);
  const dirs = Math.max(1, Math.round(FILES / 100));
  for (let d = 0; d < dirs; d++) fs.mkdirSync(path.join(root, `d${d % 10}`, `sub${d}`), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const size = 1024 + Math.floor(Math.random() * 63 * 1024);
    const dir = path.join(root, `d${i % dirs % 10}`, `sub${i % dirs}`);
    fs.writeFileSync(path.join(dir, `f${i}.dat`), pool.subarray(0, size));
    bytes += size;
    if (i % 20 === 0) fs.symlinkSync(`f${i}.dat`, path.join(dir, `l${i}`));
  }
  return bytes;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const addon = loadAddon();
  const src = path.join(BASE, 'src');
  fs.mkdirSync(src);
  const bytes = generate(src);
  spawnSync('sync');
  const opts = THREADS ? { threads: THREADS } : undefined;
  const times = { copyTree: [] as number[], cpA: [] as number[] };
  const runOurs = async (dst: string) => {
    const t = process.hrtime.bigint();
    await addon.copyTree(src, dst, opts);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const runCp = (dst: string) => {
    const t = process.hrtime.bigint();
    const r = spawnSync('cp', ['-a', src, dst]);
    if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const clean = (dst: string) => fs.rmSync(dst, { recursive: true, force: true });
  // Warm-up: one of each, not counted.
  await runOurs(path.join(BASE, 'w1'));
  runCp(path.join(BASE, 'w2'));
  clean(path.join(BASE, 'w1'));
  clean(path.join(BASE, 'w2'));
  for (let i = 0; i < RUNS; i++) {
    // Alternate which goes first so neither always follows a big delete.
    const order = i % 2 ? ['cp', 'ours'] : ['ours', 'cp'];
    for (const which of order) {
      const dst = path.join(BASE, `run-${which}`);
      if (which === 'ours') times.copyTree.push(await runOurs(dst));
      else times.cpA.push(runCp(dst));
      clean(dst);
      spawnSync('sync');
    }
  }
  const result = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10), kernel: os.release(), fs: spawnSync('stat', ['-f', '-c', '%T', BASE], { encoding: 'utf8' }).stdout.trim() },
    tree: { files: FILES, symlinks: Math.ceil(FILES / 20), dirs: Math.round(FILES / 100) + 10, bytes },
    runs: RUNS,
    threads: THREADS ?? Math.max(2, os.cpus().length),
    ms: {
      copyTree: { median: median(times.copyTree), all: times.copyTree.map((x) => Math.round(x)) },
      cpA: { median: median(times.cpA), all: times.cpA.map((x) => Math.round(x)) },
    },
    ratio: median(times.copyTree) / median(times.cpA),
  };
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'copytree.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(
    `copyTree: median ${result.ms.copyTree.median.toFixed(0)} ms, cp -a: median ${result.ms.cpA.median.toFixed(0)} ms ` +
      `(ratio ${result.ratio.toFixed(2)}; ${FILES} files, ${(bytes / 1048576).toFixed(0)} MiB, ${RUNS} runs each, threads ${result.threads})`,
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(BASE, { recursive: true, force: true }));
