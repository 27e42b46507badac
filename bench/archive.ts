// Layer unpack/create throughput against the usual tools.
//   node --import tsx bench/archive.ts [--runs N] [--mib 200]
// Builds a ~200 MiB tree (many small files + a few large ones, compressible like binaries),
// then times (median of N runs, warm page cache, each run into a fresh dir):
//   unpack: applyLayer (gunzip: ISA-L, the addon's zlib, node:zlib)  vs  umoci unpack --rootless
//           (OCI layout)  vs  tar -xzf, pigz -dc | tar -x, igzip -dc | tar -x
//   create: writeLayer+createLayerBlob with each gzip codec (ISA-L, the addon's zlib, one
//           node:zlib stream: the no-addon path) vs tar -c | gzip / pigz / igzip (levels 1 and 6),
//           and zstd -3 (libzstd in the addon, the zstd program) vs tar -c | zstd -T0 -3
//   --gzip-only: just the gzip create groups, merged into the existing results file
// The codec of each img row is chosen with IMG_GZIP_CODEC / IMG_ZSTD_CODEC (lib/archive/codecs.ts).
// Results: bench/results/archive.json and a table on stdout. Per-codec throughput on 64 MiB
// inputs: bench/archive-codecs.ts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyLayer } from '../lib/archive/apply';
import { compareDirs, writeLayer } from '../lib/archive/diff';
import { createLayerBlob } from '../lib/archive/layer';
import { writeOciLayout } from '../test/archive/oci';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const RUNS = opt('--runs', 3);
const MIB = opt('--mib', 200);
// tmpfs by default: the VM disk's writeback noise swamped the differences (runs of the same
// unpack varied 3-20 s on ext4); --disk uses os.tmpdir() instead.
const onDisk = args.includes('--disk');
const gzipOnly = args.includes('--gzip-only');
const work = fs.mkdtempSync(path.join(onDisk || !fs.existsSync('/dev/shm') ? os.tmpdir() : '/dev/shm', 'img-bench-archive-'));

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}
function rm(p: string): void {
  sh(`rm -rf '${p}'`);
}
function has(prog: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${prog}`]).status === 0;
}

let seed = 0x9e3779b9;
function rnd(): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
}

// File contents are slices of this host's /usr/bin programs: real binaries and scripts, so
// compression ratio and speed are what image layers see (~3x with gzip -6).
let pool: Buffer | null = null;
function content(size: number): Buffer {
  if (!pool) {
    const parts: Buffer[] = [];
    let n = 0;
    for (const name of fs.readdirSync('/usr/bin').sort()) {
      const p = path.join('/usr/bin', name);
      const st = fs.lstatSync(p);
      if (!st.isFile()) continue;
      parts.push(fs.readFileSync(p));
      n += st.size;
      if (n > 96 * 1024 * 1024) break;
    }
    pool = Buffer.concat(parts);
  }
  const off = rnd() % (pool.length - size);
  return pool.subarray(off, off + size);
}

function buildTree(root: string, totalMiB: number): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const large = Math.floor(totalMiB * 0.5) * 1024 * 1024; // half in 8 large files
  for (let i = 0; i < 8; i++) {
    const d = path.join(root, 'opt/big');
    fs.mkdirSync(d, { recursive: true });
    const sz = Math.floor(large / 8);
    fs.writeFileSync(path.join(d, `blob-${i}.so`), content(sz));
    files++;
    bytes += sz;
  }
  const target = totalMiB * 1024 * 1024;
  let i = 0;
  while (bytes < target) {
    const d = path.join(root, 'usr/lib', `pkg${Math.floor(i / 200)}`, `sub${Math.floor(i / 20) % 10}`);
    if (i % 20 === 0) fs.mkdirSync(d, { recursive: true });
    const sz = 200 + (rnd() % 12000); // small files: 0.2-12 KB, like a distro's /usr
    fs.writeFileSync(path.join(d, `file${i}.txt`), content(sz));
    if (i % 50 === 0) fs.symlinkSync(`file${i}.txt`, path.join(d, `link${i}`));
    bytes += sz;
    files++;
    i++;
  }
  return { files, bytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Timing {
  wall: number; // ms, median
  cpu: number; // ms user+sys (children included), median
}

// Each run is a child process under /usr/bin/time: same accounting for img and the tools.
// The box is shared (other jobs run), so CPU time is the steadier figure; wall is reported
// too. Runs of the compared commands are interleaved (A B C A B C ...) so load drift hits all.
function timeGroup(runs: number, prep: () => void, cmds: Array<[string, string]>): Record<string, Timing & { bytes?: number }> {
  const walls = cmds.map(() => [] as number[]);
  const cpus = cmds.map(() => [] as number[]);
  const bytes: Array<number | undefined> = cmds.map(() => undefined);
  const tf = path.join(work, 'time.out');
  for (let r = 0; r < runs; r++) {
    cmds.forEach(([label, cmd], i) => {
      prep();
      const res = spawnSync('/usr/bin/time', ['-f', '%e %U %S', '-o', tf, 'sh', '-c', cmd], {
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
        env: { ...process.env, IMG_ADDON_PATH: path.resolve(__dirname, '../build/Release/img_addon.node') },
      });
      if (res.status !== 0) throw new Error(`${label}: ${cmd}: ${res.stderr}`);
      const [e, u, s] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      walls[i].push(e * 1000);
      cpus[i].push((u + s) * 1000);
      const out = path.join(work, 'out.blob');
      if (fs.existsSync(out)) {
        bytes[i] = fs.statSync(out).size;
        fs.rmSync(out);
      }
    });
  }
  const res: Record<string, Timing & { bytes?: number }> = {};
  cmds.forEach(([label], i) => {
    res[label] = { wall: median(walls[i]), cpu: median(cpus[i]), ...(bytes[i] !== undefined ? { bytes: bytes[i] } : {}) };
    process.stderr.write(`  ${label}: wall ${walls[i].map((x) => x.toFixed(0)).join(', ')} ms; cpu ${cpus[i].map((x) => x.toFixed(0)).join(', ')} ms\n`);
  });
  return res;
}

async function main(): Promise<void> {
  const only = args.indexOf('--tree-only');
  if (only >= 0) {
    // for profiling: build the tree at the given path and stop
    console.log(buildTree(args[only + 1], MIB));
    return;
  }
  const src = path.join(work, 'src');
  process.stderr.write(`building a ${MIB} MiB tree in ${src}\n`);
  const tree = buildTree(src, MIB);
  // ours runs as a bundled script (esbuild) so its start-up is ~50 ms like a compiled tool
  const runner = path.join(work, 'archive-run.js');
  const eb = spawnSync(
    path.resolve(__dirname, '../node_modules/.bin/esbuild'),
    [path.join(__dirname, 'archive-run.ts'), '--bundle', '--platform=node', '--format=cjs', `--outfile=${runner}`, '--log-level=warning'],
    { encoding: 'utf8' },
  );
  if (eb.status !== 0) throw new Error(eb.stderr);
  const img = `'${process.execPath}' '${runner}'`;
  sh('sync');
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() },
    runs: RUNS,
    fs: onDisk ? 'disk (ext4)' : 'tmpfs',
    tree,
  };
  const size = (p: string) => fs.statSync(p).size;
  const none = () => {};

  // ---- create
  process.stderr.write('create\n');
  const out = path.join(work, 'out.blob');
  const tarc = `tar -C '${src}' -cf - .`;
  const gz = (codec: string) => `IMG_GZIP_CODEC=${codec} ${img}`;
  const tools = (level: number) =>
    ['gzip', 'pigz', 'igzip']
      .filter(has)
      .map((p) => [`tar | ${p} -${level === 6 && p === 'igzip' ? 3 : level}`, `${tarc} | ${p} -${level === 6 && p === 'igzip' ? 3 : level} > '${out}'`] as [string, string]);
  const create = {
    ...timeGroup(RUNS, none, [
      ['img gzip -1 isal', `${gz('isal')} create '${src}' '${out}' gzip 1`],
      ['img gzip -1 zlib (addon)', `${gz('zlib')} create '${src}' '${out}' gzip 1`],
      ['img gzip -1 node:zlib', `${gz('node')} create '${src}' '${out}' gzip 1`],
      ...tools(1),
    ]),
    ...timeGroup(RUNS, none, [
      ['img gzip -6 zlib (addon)', `${gz('zlib')} create '${src}' '${out}' gzip 6`],
      ['img gzip -6 node:zlib', `${gz('node')} create '${src}' '${out}' gzip 6`],
      ...tools(6),
    ]),
    ...(gzipOnly ? {} : timeGroup(RUNS, none, [
      ['img zstd -3 libzstd', `IMG_ZSTD_CODEC=libzstd ${img} create '${src}' '${out}' zstd`],
      ['img zstd -3 program', `IMG_ZSTD_CODEC=program ${img} create '${src}' '${out}' zstd`],
      ['tar | zstd -T0 -3', `${tarc} | zstd -q -T0 -3 > '${out}'`],
      ['img tar (none)', `${img} create '${src}' '${out}' none`],
      ['tar -cf', `tar -C '${src}' -cf '${out}' .`],
      // what the diffID alone costs the tools (img computes it in the same pass)
      ['tar | sha256sum', `${tarc} | sha256sum > /dev/null`],
    ])),
  };
  results.create = create;
  if (gzipOnly) {
    const file = path.join(__dirname, 'results/archive.json');
    const prev = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
    const gz = { date: results.date, host: results.host, runs: RUNS, fs: results.fs, tree };
    const merged = { ...prev, create: { ...Object.fromEntries(Object.entries(prev.create ?? {}).filter(([k]) => !/gzip/.test(k))), ...create }, gzipCreate: gz };
    fs.writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
    const f = (n: number, w = 7) => n.toFixed(0).padStart(w);
    console.log(`\n${results.fs}; ${tree.files} files; median of ${RUNS} runs; load avg ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`);
    console.log('create                       wall ms  cpu ms  blob MiB');
    for (const [k, v] of Object.entries(create)) console.log(`  ${k.padEnd(26)}${f(v.wall)} ${f(v.cpu)}  ${v.bytes ? (v.bytes / 1024 / 1024).toFixed(1).padStart(8) : '       -'}`);
    return;
  }

  // ---- unpack (one gzip -6 layer, made by tar | gzip, read by everyone)
  process.stderr.write('unpack\n');
  const layer = path.join(work, 'layer.tar.gz');
  sh(`tar -C '${src}' -cf - . | gzip -6 > '${layer}'`);
  const lb = JSON.parse(spawnSync('sh', ['-c', `${img} create '${src}' /dev/null none`], { encoding: 'utf8' }).stdout);
  const layerSha = spawnSync('sha256sum', [layer], { encoding: 'utf8' }).stdout.split(' ')[0];
  const diffSha = spawnSync('sh', ['-c', `gzip -dc '${layer}' | sha256sum`], { encoding: 'utf8' }).stdout.split(' ')[0];
  const layout = path.join(work, 'layout');
  writeOciLayout(layout, [
    { file: layer, digest: `sha256:${layerSha}`, diffId: `sha256:${diffSha}`, size: size(layer), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
  ]);
  const dst = path.join(work, 'dst');
  const fresh = () => {
    rm(dst);
    if (onDisk) sh('sync');
  };
  const unpack = timeGroup(RUNS, fresh, [
    ['img applyLayer isal', `${gz('isal')} apply '${layer}' '${dst}'`],
    ['img applyLayer zlib (addon)', `${gz('zlib')} apply '${layer}' '${dst}'`],
    ['img applyLayer node:zlib', `${gz('node')} apply '${layer}' '${dst}'`],
    ['umoci unpack --rootless', `umoci unpack --rootless --image '${layout}:latest' '${dst}'`],
    ['tar -xzf', `mkdir -p '${dst}' && tar -xzf '${layer}' -C '${dst}'`],
    ...['pigz', 'igzip'].filter(has).map((p) => [`${p} -dc | tar -x`, `mkdir -p '${dst}' && ${p} -dc '${layer}' | tar -x -C '${dst}'`] as [string, string]),
  ]);
  results.unpack = unpack;
  const tarBytes: number = lb.uncompressedSize;
  results.layer = { gzipBytes: size(layer), tarBytes };
  rm(dst);

  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results/archive.json'), JSON.stringify(results, null, 2) + '\n');

  const mbs = (ms: number) => (tarBytes / 1024 / 1024 / (ms / 1000)).toFixed(0);
  const f = (n: number, w = 7) => n.toFixed(0).padStart(w);
  console.log(
    `\n${results.fs}; ${tree.files} files, ${(tarBytes / 1024 / 1024).toFixed(0)} MiB tar, ${(size(layer) / 1024 / 1024).toFixed(0)} MiB gzip -6; ` +
      `median of ${RUNS} runs; load avg ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs\n`,
  );
  console.log('unpack                       wall ms  cpu ms  MiB/s(wall)');
  for (const [k, v] of Object.entries(unpack)) console.log(`  ${k.padEnd(26)}${f(v.wall)} ${f(v.cpu)}  ${mbs(v.wall).padStart(8)}`);
  console.log('\ncreate                       wall ms  cpu ms  MiB/s(wall)  blob MiB');
  for (const [k, v] of Object.entries(create))
    console.log(`  ${k.padEnd(26)}${f(v.wall)} ${f(v.cpu)}  ${mbs(v.wall).padStart(8)}  ${v.bytes ? (v.bytes / 1024 / 1024).toFixed(1).padStart(8) : '       -'}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => rm(work));
