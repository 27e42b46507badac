// Codec throughput: the addon's codecs (and node:zlib, the no-addon path) in this process
// against the programs, on N MiB of random bytes and of compressible data.
//   node --import tsx bench/archive-codecs.ts [--mib 64] [--runs 5]
// Inputs on tmpfs: random bytes, and the first N MiB of a tar of this host's /usr/bin and
// /usr/lib (binaries and libraries, compressible like image layers).
// In-process rows stream the input from memory (1 MiB writes) through compressStream /
// decompressStream into a counting sink; program rows run `prog < file > /dev/null` under
// /usr/bin/time. Both report wall and CPU time (user + sys, every thread). On a shared machine
// CPU time is the steady figure: "MiB/cpu-s" is the throughput per core.
// Rows are interleaved run by run (A B C A B C ...) so load drift hits all alike.
// Results: bench/results/archive-codecs.json and a table on stdout.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { codecAddon, describeCodecs } from '../lib/archive/codecs';
import { compressStream, decompressStream, type CodecChoice } from '../lib/archive/compression';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MIB = opt('--mib', 64);
const RUNS = opt('--runs', 5);
const has = (prog: string) => spawnSync('sh', ['-c', `command -v ${prog}`]).status === 0;

interface Sample {
  wall: number; // ms
  cpu: number; // ms, all threads
  out: number; // bytes out
}
type Row = { label: string; run: () => Promise<Sample> | Sample };

// CPU of this process and of its reaped children (the `zstd` program rows), in ms.
function cpuNow(): number {
  const f = fs.readFileSync('/proc/self/stat', 'utf8');
  const [cutime, cstime] = f.slice(f.lastIndexOf(')') + 2).split(' ').slice(13, 15).map(Number);
  const own = process.cpuUsage();
  return (own.user + own.system) / 1000 + (cutime + cstime) * 10; // USER_HZ 100
}

function inProcess(label: string, input: Buffer, make: () => Duplex): Row {
  return {
    label,
    run: async () => {
      let out = 0;
      const pieces = function* () {
        for (let off = 0; off < input.length; off += 1 << 20) yield input.subarray(off, off + (1 << 20));
      };
      const c0 = cpuNow();
      const t0 = performance.now();
      await pipeline(Readable.from(pieces()), make(), new Writable({ highWaterMark: 1 << 20, write: (c: Buffer, _e, cb) => ((out += c.length), cb()) }));
      const wall = performance.now() - t0;
      return { wall, cpu: cpuNow() - c0, out };
    },
  };
}

function program(label: string, cmd: string, file: string, work: string): Row {
  return {
    label,
    run: () => {
      const tf = path.join(work, 'time.out');
      const outFile = path.join(work, 'prog.out');
      const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', '-o', tf, 'sh', '-c', `${cmd} < '${file}' > '${outFile}'`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${label}: ${r.stderr}`);
      const [e, u, s] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      const out = fs.statSync(outFile).size;
      fs.rmSync(outFile);
      return { wall: e * 1000, cpu: (u + s) * 1000, out };
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function group(title: string, rows: Row[], inBytes: number): Promise<Record<string, Sample & { mibPerCpuS: number }>> {
  const res = rows.map(() => [] as Sample[]);
  await rows[0].run(); // warm: the pool's threads, the page cache
  for (let r = 0; r < RUNS; r++) for (let i = 0; i < rows.length; i++) res[i].push(await rows[i].run());
  const f = (n: number, w = 8) => n.toFixed(0).padStart(w);
  console.log(`\n${title}`);
  console.log('                                wall ms   cpu ms  MiB/cpu-s   out MiB');
  const out: Record<string, Sample & { mibPerCpuS: number }> = {};
  rows.forEach(({ label }, i) => {
    const m = { wall: median(res[i].map((x) => x.wall)), cpu: median(res[i].map((x) => x.cpu)), out: res[i][0].out };
    const mibPerCpuS = inBytes / (1 << 20) / (m.cpu / 1000);
    out[label] = { ...m, mibPerCpuS };
    console.log(`  ${label.padEnd(28)}${f(m.wall)} ${f(m.cpu)} ${f(mibPerCpuS, 10)} ${(m.out / (1 << 20)).toFixed(1).padStart(9)}`);
  });
  return out;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/dev/shm/img-bench-codecs-');
  try {
    const addon = codecAddon();
    const inputs: Record<string, string> = { random: path.join(work, 'random.bin'), compressible: path.join(work, 'usr.tar') };
    const mk = (cmd: string) => {
      const r = spawnSync('sh', ['-c', cmd]);
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    mk(`head -c ${MIB << 20} /dev/urandom > '${inputs.random}'`);
    mk(`tar -C / -cf - usr/bin usr/lib 2>/dev/null | head -c ${MIB << 20} > '${inputs.compressible}'`);
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() },
      codecs: describeCodecs(),
      mib: MIB,
      runs: RUNS,
    };
    console.log(`${MIB} MiB inputs on tmpfs; median of ${RUNS}; ${describeCodecs()}; load avg ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`);
    const tools = (...names: string[]) => names.filter(has);
    for (const [kind, file] of Object.entries(inputs)) {
      const data = fs.readFileSync(file);
      const gz = path.join(work, `${kind}.gz`);
      const zst = path.join(work, `${kind}.zst`);
      mk(`gzip -1 < '${file}' > '${gz}'`);
      mk(`zstd -q -3 < '${file}' > '${zst}'`);
      const gzData = fs.readFileSync(gz);
      const zstData = fs.readFileSync(zst);
      const ours = (label: string, input: Buffer, make: (c: CodecChoice) => Duplex, c: CodecChoice, need: boolean) => (need ? [inProcess(label, input, () => make(c))] : []);
      const isal = !!addon?.codecVersions.isal;
      const zstd = !!addon?.codecVersions.zstd;
      results[`${kind} gzip -1`] = await group(`${kind}: gzip -1`, [
        ...ours('img isal (addon)', data, (c) => compressStream('gzip', 1, c), { gzip: 'isal' }, isal),
        ...ours('img zlib (addon, fallback)', data, (c) => compressStream('gzip', 1, c), { gzip: 'zlib' }, !!addon),
        ...ours('img node:zlib (no addon)', data, (c) => compressStream('gzip', 1, c), { gzip: 'node' }, true),
        ...tools('igzip', 'pigz', 'gzip').map((p) => program(`${p} -1`, `${p} -1 -c`, file, work)),
      ], data.length);
      results[`${kind} gunzip`] = await group(`${kind}: gunzip (of gzip -1)`, [
        ...ours('img isal (addon)', gzData, (c) => decompressStream('gzip', c), { gzip: 'isal' }, isal),
        ...ours('img zlib (addon, fallback)', gzData, (c) => decompressStream('gzip', c), { gzip: 'zlib' }, !!addon),
        ...ours('img node:zlib (no addon)', gzData, (c) => decompressStream('gzip', c), { gzip: 'node' }, true),
        ...tools('igzip', 'pigz', 'gzip').map((p) => program(`${p} -d`, `${p} -dc`, gz, work)),
      ], data.length);
      results[`${kind} zstd -3`] = await group(`${kind}: zstd -3`, [
        ...ours('img libzstd (addon)', data, (c) => compressStream('zstd', 3, c), { zstd: 'libzstd' }, zstd),
        ...ours('img zstd program', data, (c) => compressStream('zstd', 3, c), { zstd: 'program' }, true),
        program('zstd -T0 -3', 'zstd -q -T0 -3 -c', file, work),
      ], data.length);
      results[`${kind} unzstd`] = await group(`${kind}: zstd -d`, [
        ...ours('img libzstd (addon)', zstData, (c) => decompressStream('zstd', c), { zstd: 'libzstd' }, zstd),
        ...ours('img zstd program', zstData, (c) => decompressStream('zstd', c), { zstd: 'program' }, true),
        program('zstd -d', 'zstd -q -dc', zst, work),
      ], data.length);
    }
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results/archive-codecs.json'), JSON.stringify(results, null, 2) + '\n');
  } finally {
    spawnSync('rm', ['-rf', work]);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
