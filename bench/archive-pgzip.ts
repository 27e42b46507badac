// The gzip step of createLayerBlob alone, in one process, with CPU time split per thread:
//   node --import tsx bench/archive-pgzip.ts [--mib 150] [--runs 3] [--level 1]
// Input: the first N MiB of a tar of this host's /usr (binaries and libraries, like image
// layers), on tmpfs. Pipeline as in createLayerBlob: read → sha256 → gzip → sha256 → discard.
// Rows: one zlib stream (the pre-pgzip path) and ParallelGzip at chunk sizes 256 KiB..4 MiB.
// Wall time is what this run got on a shared machine; "main" is the CPU of the JS thread (the
// part that cannot be spread), "other" everything else (deflate workers / libuv zlib threads).
// On an idle box with C cores, wall ≈ max(main, (main + other) / C) for pgzip and
// max(main, other) for one zlib stream (one libuv thread at a time): printed as "ideal".
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { DeflatePool, ParallelGzip } from '../lib/archive/pgzip';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MIB = opt('--mib', 150);
const RUNS = opt('--runs', 3);
const LEVEL = opt('--level', 1);
const CORES = Math.max(2, os.availableParallelism());

const TICK = 1000 / 100; // ms per clock tick (USER_HZ is 100 on Linux)
function threadTimes(): Map<number, number> {
  const m = new Map<number, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const f = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      m.set(Number(tid), (Number(rest[11]) + Number(rest[12])) * TICK); // utime, stime
    } catch {
      // thread exited between readdir and read
    }
  }
  return m;
}

function tap(h: ReturnType<typeof createHash>): Transform {
  return new Transform({ highWaterMark: 1024 * 1024, transform: (c: Buffer, _e, cb) => (h.update(c), cb(null, c)) });
}

async function once(file: string, comp: () => Duplex): Promise<{ wall: number; main: number; other: number; bytes: number }> {
  let bytes = 0;
  const t0 = threadTimes();
  const w0 = performance.now();
  await pipeline(
    fs.createReadStream(file, { highWaterMark: 1024 * 1024 }),
    tap(createHash('sha256')),
    comp(),
    tap(createHash('sha256')),
    new Writable({ highWaterMark: 1024 * 1024, write: (c: Buffer, _e, cb) => ((bytes += c.length), cb()) }),
  );
  const wall = performance.now() - w0;
  const t1 = threadTimes();
  let main = 0;
  let other = 0;
  for (const [tid, t] of t1) {
    const d = t - (t0.get(tid) ?? 0);
    if (tid === process.pid) main += d;
    else other += d;
  }
  return { wall, main, other, bytes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const file = fs.mkdtempSync('/dev/shm/img-bench-pgzip-') + '/in.tar';
  try {
    const r = spawnSync('sh', ['-c', `tar -C / -cf - usr/bin usr/lib 2>/dev/null | head -c ${MIB * 1024 * 1024} > '${file}'`]);
    if (r.status !== 0) throw new Error('making the input tar failed');
    const pool = new DeflatePool(CORES);
    const rows: Array<[string, () => Duplex]> = [
      [`zlib gzip -${LEVEL} (one stream)`, () => zlib.createGzip({ level: LEVEL, chunkSize: 128 * 1024 })],
      ...[256, 512, 1024, 2048, 4096].map(
        (k) => [`pgzip -${LEVEL} chunk ${k} KiB`, () => new ParallelGzip({ level: LEVEL, chunkSize: k * 1024, pool })] as [string, () => Duplex],
      ),
    ];
    await once(file, rows[1][1]); // warm the workers and the page cache
    const res = rows.map(() => [] as Array<Awaited<ReturnType<typeof once>>>);
    for (let i = 0; i < RUNS; i++) for (let j = 0; j < rows.length; j++) res[j].push(await once(file, rows[j][1]));
    await pool.close();
    const f = (n: number) => n.toFixed(0).padStart(7);
    console.log(`${MIB} MiB tar of /usr; ${CORES} workers; median of ${RUNS}; load avg ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`);
    console.log('                               wall ms  main ms other ms  ideal ms  blob MiB');
    const out: Record<string, unknown> = {};
    rows.forEach(([label], j) => {
      const m = { wall: median(res[j].map((x) => x.wall)), main: median(res[j].map((x) => x.main)), other: median(res[j].map((x) => x.other)) };
      const ideal = j === 0 ? Math.max(m.main, m.other) : Math.max(m.main, (m.main + m.other) / os.cpus().length);
      const bytes = res[j][0].bytes;
      out[label] = { ...m, ideal, bytes };
      console.log(`  ${label.padEnd(28)}${f(m.wall)}  ${f(m.main)}  ${f(m.other)}  ${f(ideal)}  ${(bytes / 1024 / 1024).toFixed(1).padStart(8)}`);
    });
    const resFile = `${__dirname}/results/archive.json`;
    const prev = fs.existsSync(resFile) ? JSON.parse(fs.readFileSync(resFile, 'utf8')) : {};
    prev.pgzip = { date: new Date().toISOString(), mib: MIB, level: LEVEL, runs: RUNS, loadavg: os.loadavg(), cpus: os.cpus().length, rows: out };
    fs.writeFileSync(resFile, JSON.stringify(prev, null, 2) + '\n');
  } finally {
    spawnSync('rm', ['-rf', file.replace(/\/in\.tar$/, '')]);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
