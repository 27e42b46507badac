// A cache that travels: pod A (cold: empty state dir) builds, pushes and exports
// its cache to a registry; pod B (another empty state dir, a fresh copy of the
// context) builds the same thing from that cache. Measured per pod: wall time and
// bytes downloaded from the registry (blob GETs counted by a proxy in front of
// it). Goal: pod B ≤ 0.2 × pod A on both. Run as root (img runs as the
// unprivileged user, as in the other benches):
//
//   node --import tsx bench/cache.ts [--runs 3] [--cases layers,bigcontext] [--img-user imgtest]
//
// Workloads:
//   layers      busybox + four RUN steps writing 32 MiB of random bytes each (four
//               incompressible 32 MiB layers), then a small COPY and RUN
//   bigcontext  COPY of a 150 MiB context (4,000 small files and two 64 MiB
//               files) and a RUN listing it
// Pods:
//   A       -t REG/bench/W:a --push --cache-to type=registry,ref=REG/cache/W,mode=max
//   B push  -t REG/bench/W:b --push --cache-from type=registry,ref=REG/cache/W
//           (every step CACHED; layers mounted from the cache repository)
//   B store -t bench/W:b --cache-from …   (the image stored locally: its layers fetched)
// Writes bench/results/cache.json.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBusyboxImage } from '../test/fixtures/images';
import { startRegistry, type Registry } from '../test/fixtures/registry';
import { option } from './options';

const REPO = path.resolve(__dirname, '..');
const RUNS = Number(option('runs', '3'));
const CASES = option('cases', 'layers,bigcontext').split(',');
const IMG_USER = option('img-user', 'imgtest');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-cache-'));
fs.chmodSync(WORK, 0o755);

// Counts the bytes of blob bodies the registry sends (GET …/blobs/sha256:…).
function countingProxy(target: number): Promise<{ port: number; downloaded(): number; reset(): void; close(): Promise<void> }> {
  let bytes = 0;
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
      r.on('data', (c: Buffer) => {
        if (isBlob) bytes += c.length;
      });
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        downloaded: () => bytes,
        reset: () => (bytes = 0),
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

function sh(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
}

// Asynchronous: the counting proxy lives in this process and must keep serving.
async function img(state: string, buildArgs: string[]): Promise<number> {
  const main = path.join(REPO, 'dist', 'lib', 'cli', 'main.js');
  const env = { HOME: `/home/${IMG_USER}`, XDG_RUNTIME_DIR: path.join(WORK, 'run') };
  let argv = [process.execPath, main, '--state', state, 'build', '--no-console', ...buildArgs];
  if (process.getuid?.() === 0) argv = ['runuser', '-u', IMG_USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
  const t = process.hrtime.bigint();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`img build ${buildArgs.join(' ')} failed (${code}): ${err}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function writeCase(name: string, base: string): string {
  const dir = path.join(WORK, 'cases', name);
  fs.mkdirSync(dir, { recursive: true });
  const files: Record<string, string | Buffer> = {};
  let dockerfile: string;
  if (name === 'layers') {
    const runs = [1, 2, 3, 4].map((i) => `RUN head -c 33554432 /dev/urandom > /data-${i}`).join('\n');
    dockerfile = `FROM ${base}\n${runs}\nCOPY app.txt /app.txt\nRUN wc -c /data-* /app.txt > /sizes\n`;
    files['app.txt'] = 'v1\n';
  } else {
    for (let i = 0; i < 4000; i++) files[`src/d${i % 40}/f${i}.txt`] = crypto.randomBytes(512 + (i % 7) * 512).toString('hex');
    files['big1.bin'] = crypto.randomBytes(64 << 20);
    files['big2.bin'] = crypto.randomBytes(64 << 20);
    dockerfile = `FROM ${base}\nCOPY . /ctx\nRUN ls -R /ctx | wc -l > /count\n`;
  }
  fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [f, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), data);
  }
  return dir;
}

// A pod's own copy of the context: new inodes and modification times.
function podContext(src: string, pod: string): string {
  const dst = path.join(WORK, 'pods', pod);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  sh('cp', ['-r', src, dst]);
  execFileSync('chmod', ['-R', 'a+rX', dst]);
  return dst;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  sh('npx', ['tsc', '-p', path.join(REPO, 'tsconfig.json')]);
  fs.mkdirSync(path.join(WORK, 'run'), { recursive: true });
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', IMG_USER, WORK]);
  const reg: Registry = await startRegistry();
  const proxy = await countingProxy(reg.port);
  const host = `127.0.0.1:${proxy.port}`;
  const results: Record<string, Record<string, { seconds: number[]; downloaded: number[] }>> = {};
  try {
    await reg.seed('library/busybox', 'latest', await makeBusyboxImage());
    for (const name of CASES) {
      const ctx = writeCase(name, `${host}/library/busybox:latest`);
      execFileSync('chmod', ['-R', 'a+rX', WORK]);
      const r: Record<string, { seconds: number[]; downloaded: number[] }> = { A: { seconds: [], downloaded: [] }, 'B push': { seconds: [], downloaded: [] }, 'B store': { seconds: [], downloaded: [] } };
      for (let i = 0; i < RUNS; i++) {
        const cacheRef = `${host}/cache/${name}:run${i}`;
        const pods: [string, string[]][] = [
          ['A', ['-t', `${host}/bench/${name}:a${i}`, '--push', '--cache-to', `type=registry,ref=${cacheRef},mode=max`]],
          ['B push', ['-t', `${host}/bench/${name}:b${i}`, '--push', '--cache-from', `type=registry,ref=${cacheRef}`]],
          ['B store', ['-t', `bench/${name}:b${i}`, '--cache-from', `type=registry,ref=${cacheRef}`]],
        ];
        for (const [pod, extra] of pods) {
          const state = path.join(WORK, 'states', `${name}-${pod.replace(' ', '-')}-${i}`);
          proxy.reset();
          const seconds = await img(state, [...extra, podContext(ctx, `${name}-${pod.replace(' ', '-')}`)]);
          r[pod].seconds.push(seconds);
          r[pod].downloaded.push(proxy.downloaded());
          fs.rmSync(state, { recursive: true, force: true });
        }
      }
      results[name] = r;
      const a = r.A;
      for (const pod of ['A', 'B push', 'B store']) {
        const p = r[pod];
        console.error(
          `${name} ${pod}: ${median(p.seconds).toFixed(2)} s, ${(median(p.downloaded) / 1048576).toFixed(1)} MiB downloaded` +
            (pod === 'A' ? '' : ` (${(median(p.seconds) / median(a.seconds)).toFixed(2)}× A's time, ${(median(p.downloaded) / Math.max(1, median(a.downloaded))).toFixed(3)}× its bytes)`),
        );
      }
    }
  } finally {
    await proxy.close();
    await reg.stop();
  }
  const lines = [
    `pod B (cache imported) vs pod A (cold), medians of ${RUNS} runs (${os.cpus().length} cores, ${new Date().toISOString()})`,
    '',
    '| workload | pod | wall s | downloaded MiB | time / A | bytes / A |',
    '|---|---|---|---|---|---|',
  ];
  for (const [name, r] of Object.entries(results)) {
    for (const [pod, p] of Object.entries(r)) {
      const t = median(p.seconds);
      const b = median(p.downloaded);
      lines.push(`| ${name} | ${pod} | ${t.toFixed(2)} | ${(b / 1048576).toFixed(2)} | ${(t / median(r.A.seconds)).toFixed(2)} | ${(b / Math.max(1, median(r.A.downloaded))).toFixed(3)} |`);
    }
  }
  console.log(lines.join('\n'));
  const out = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'cache.json'), JSON.stringify({ date: new Date().toISOString(), runs: RUNS, results }, null, 2));
  fs.rmSync(WORK, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
