// Registry throughput: `img push` / `img pull` against `skopeo copy` of the same image,
// same machine, same run, same local distribution registry (docker-registry, plain HTTP on
// 127.0.0.1).
//
//   node --import tsx bench/pull-push.ts [--runs 3] [--layers 4] [--layer-mib 64]
//
// On a busy shared machine wall times swing by 2×; `nice -n -5` on the whole run (tools and
// registry alike) steadies them. The client CPU column (GNU time, user + sys) is the
// load-independent figure.
//
// The image: `--layers` layers of `--layer-mib` MiB each (default 4 × 64 MiB = 256 MiB) of
// random, incompressible data in a tar, gzip level 1 (so the blobs are ~the same size as the
// data; compressed layers also keep skopeo from re-compressing while pushing to a registry).
//
// img runs as installed: bin/img.js loading the esbuild bundle dist/img.js (`npm run build`
// first; no tsx compile on every run). Timings are whole commands, process start included.
//   push:  img push (state dir holding the image)  vs  skopeo copy oci:DIR:tag docker://…
//   pull:  img pull into a fresh state dir           vs  skopeo copy docker://… oci:FRESH_DIR:tag
// Each push run gets a fresh registry (so nothing can be skipped or mounted); pulls share
// one seeded registry. Prints MiB/s medians of --runs runs and img/skopeo ratios, and
// writes bench/results/pull-push.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ContentStore } from '../lib/content/store';
import { ImageStore } from '../lib/images/store';
import { MediaType, type Descriptor } from '../lib/images/types';
import { tarPacker } from '../test/fixtures/layers';
import { startRegistry, type Registry } from '../test/fixtures/registry';
import { option } from './options';

const REPO = path.resolve(__dirname, '..');
const RUNS = Number(option('runs', '3'));
const LAYERS = Number(option('layers', '4'));
const LAYER_MIB = Number(option('layer-mib', '64'));
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-pull-push-'));
const IMG_JS = path.join(REPO, 'bin', 'img.js'); // the bundled CLI (dist/img.js, `npm run build`)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// CPU seconds (user + sys) of the client process, from GNU time: wall time on a shared
// machine is noisy, the client's own CPU cost per byte is not.
const TIME_BIN = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
let lastCpu = NaN;

function run(cmd: string, argv: string[]): number {
  const cpuFile = path.join(WORK, 'cpu.txt');
  const full = TIME_BIN ? [TIME_BIN, '-o', cpuFile, '-f', '%U %S', cmd, ...argv] : [cmd, ...argv];
  const t = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
  lastCpu = TIME_BIN ? fs.readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0) : NaN;
  return secs;
}

async function layerTar(bytes: number): Promise<Buffer> {
  const tar = tarPacker();
  await tar.add({ name: `data-${randomBytes(4).toString('hex')}.bin`, size: bytes, mtime: new Date(0) }, randomBytes(bytes));
  return tar.finish();
}

// The image in an img state dir (name bench/image:latest) and in an OCI layout (tag "bench").
async function buildImage(state: string, ociDir: string): Promise<{ bytes: number; manifest: Descriptor }> {
  const store = new ContentStore(state);
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  const blobs = new Map<string, Buffer>();
  for (let i = 0; i < LAYERS; i++) {
    const tar = await layerTar(LAYER_MIB << 20);
    const gz = gzipSync(tar, { level: 1 });
    const d = await store.writeBytes(gz);
    diffIds.push((await new ContentStore(path.join(WORK, 'scratch')).writeBytes(tar)).digest);
    layers.push({ mediaType: MediaType.OciLayerGzip, ...d });
    blobs.set(d.digest, gz);
  }
  fs.rmSync(path.join(WORK, 'scratch'), { recursive: true, force: true });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const configDesc = { mediaType: MediaType.OciConfig, ...(await store.writeBytes(config)) };
  blobs.set(configDesc.digest, config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers }));
  const manifestDesc: Descriptor = { mediaType: MediaType.OciManifest, ...(await store.writeBytes(manifest)) };
  blobs.set(manifestDesc.digest, manifest);

  fs.mkdirSync(path.join(ociDir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(ociDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [d, b] of blobs) fs.writeFileSync(path.join(ociDir, 'blobs', 'sha256', d.slice(7)), b);
  fs.writeFileSync(
    path.join(ociDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }),
  );
  const bytes = [...blobs.values()].reduce((a, b) => a + b.length, 0);
  return { bytes, manifest: manifestDesc };
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, 'dist', 'img.js'))) throw new Error('dist/img.js is missing: run `npm run build` first');
  const skopeoVersion = execFileSync('skopeo', ['--version'], { encoding: 'utf8' }).trim();
  const srcState = path.join(WORK, 'src-state');
  const ociDir = path.join(WORK, 'oci');
  process.stderr.write(`building a ${LAYERS} × ${LAYER_MIB} MiB image…\n`);
  const { bytes, manifest } = await buildImage(srcState, ociDir);
  const mib = bytes / (1 << 20);
  const img = (argv: string[]): number => run(process.execPath, [IMG_JS, ...argv]);
  const results: Record<string, number[]> = { 'img push': [], 'skopeo push': [], 'img pull': [], 'skopeo pull': [] };
  const cpu: Record<string, number[]> = { 'img push': [], 'skopeo push': [], 'img pull': [], 'skopeo pull': [] };

  for (let i = 0; i < RUNS; i++) {
    for (const tool of i % 2 === 0 ? (['img', 'skopeo'] as const) : (['skopeo', 'img'] as const)) {
      const reg = await startRegistry();
      try {
        let secs: number;
        if (tool === 'img') {
          const name = `${reg.host}/bench/image:latest`;
          await new ImageStore(srcState).put(name, manifest);
          fs.rmSync(path.join(srcState, 'registry'), { recursive: true, force: true }); // no mount hints
          secs = img(['--state', srcState, 'push', name]);
          await new ImageStore(srcState).delete(name);
        } else {
          secs = run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${ociDir}:bench`, `docker://${reg.host}/bench/image:latest`]);
        }
        results[`${tool} push`].push(secs);
        cpu[`${tool} push`].push(lastCpu);
        process.stderr.write(`run ${i + 1}: ${tool} push ${secs.toFixed(2)} s\n`);
      } finally {
        await reg.stop();
      }
    }
  }

  const reg: Registry = await startRegistry();
  try {
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${ociDir}:bench`, `docker://${reg.host}/bench/image:latest`]);
    for (let i = 0; i < RUNS; i++) {
      const state = path.join(WORK, `pull-state-${i}`);
      // Alternate which tool goes first, so neither always meets a warmer registry.
      const pullImg = (): number => {
        const secs = img(['--state', state, 'pull', `${reg.host}/bench/image:latest`]);
        results['img pull'].push(secs);
        cpu['img pull'].push(lastCpu);
        fs.rmSync(state, { recursive: true, force: true });
        return secs;
      };
      const dir = path.join(WORK, `pull-oci-${i}`);
      const pullSkopeo = (): number => {
        const secs = run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench/image:latest`, `oci:${dir}:bench`]);
        results['skopeo pull'].push(secs);
        cpu['skopeo pull'].push(lastCpu);
        fs.rmSync(dir, { recursive: true, force: true });
        return secs;
      };
      let secsImg: number;
      let secsSkopeo: number;
      if (i % 2 === 0) {
        secsImg = pullImg();
        secsSkopeo = pullSkopeo();
      } else {
        secsSkopeo = pullSkopeo();
        secsImg = pullImg();
      }
      process.stderr.write(`run ${i + 1}: img pull ${secsImg.toFixed(2)} s, skopeo pull ${secsSkopeo.toFixed(2)} s\n`);
    }
  } finally {
    await reg.stop();
  }

  // Fixed cost of a Node CLI process (Go's skopeo starts in ~20 ms): shown so the
  // transfer itself can be compared too.
  const startup = median(Array.from({ length: 5 }, () => img(['--version'])));

  const rows = Object.entries(results).map(([name, secs]) => ({
    name,
    medianSeconds: median(secs),
    mibPerSecond: mib / median(secs),
    medianCpuSeconds: median(cpu[name]),
    runs: secs,
    cpuRuns: cpu[name],
  }));
  const rate = (n: string): number => rows.find((r) => r.name === n)!.mibPerSecond;
  const ratios = { push: rate('img push') / rate('skopeo push'), pull: rate('img pull') / rate('skopeo pull') };
  const out: string[] = [];
  out.push(`image: ${LAYERS} layers × ${LAYER_MIB} MiB random data, gzip -1 → ${mib.toFixed(1)} MiB of blobs; ${RUNS} runs; ${skopeoVersion}; node ${process.version}; ${os.cpus().length} CPUs`);
  out.push('');
  out.push('| operation   | median s | MiB/s  | client CPU s |');
  out.push('|-------------|----------|--------|--------------|');
  for (const r of rows) {
    out.push(`| ${r.name.padEnd(11)} | ${r.medianSeconds.toFixed(2).padStart(8)} | ${r.mibPerSecond.toFixed(1).padStart(6)} | ${r.medianCpuSeconds.toFixed(2).padStart(12)} |`);
  }
  out.push('');
  out.push(`img/skopeo throughput: push ${ratios.push.toFixed(2)}×, pull ${ratios.pull.toFixed(2)}×`);
  out.push(`img process start-up (img --version, median): ${startup.toFixed(2)} s — included in every img figure above`);
  process.stdout.write(out.join('\n') + '\n');
  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(
    path.join(resultsDir, 'pull-push.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        image: { layers: LAYERS, layerMiB: LAYER_MIB, compression: 'gzip level 1 of random data', blobMiB: mib },
        runs: RUNS,
        skopeo: skopeoVersion,
        node: process.version,
        cpus: os.cpus().length,
        loadavg: os.loadavg(),
        results: rows,
        ratios,
        imgStartupSeconds: startup,
      },
      null,
      2,
    ) + '\n',
  );
}

main()
  .catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(WORK, { recursive: true, force: true }));
