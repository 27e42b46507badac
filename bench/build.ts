// Whole-build timings: img (as the unprivileged user) and, with --buildkit,
// dockerd's BuildKit (`DOCKER_BUILDKIT=1 docker build`, needs the buildx
// plugin) and/or with --buildah `buildah bud --layers` (as root), on the same
// cases and the same base image served by a local registry. Phases: cold (empty state /
// pruned builder: includes the base image pull), cached (nothing changed),
// touched (one context file's content changed). Median of --runs runs.
//   node --import tsx bench/build.ts [--runs 3] [--user imgtest] [--buildkit] [--buildah] [--dist]
// img runs from source through tsx (≈1 s of startup per run) unless --dist
// (compiled dist/: run `npx tsc -p tsconfig.json` first).
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBusyboxImage } from '../test/fixtures/images';
import { startRegistry } from '../test/fixtures/registry';

const REPO = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const RUNS = Number(opt('runs', '3'));
const USER = opt('user', 'imgtest');
const BUILDKIT = args.includes('--buildkit');
const BUILDAH = args.includes('--buildah');
const DIST = args.includes('--dist');
const root = process.getuid?.() === 0;
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-build-'));
const uid = root ? Number(execFileSync('id', ['-u', USER]).toString()) : process.getuid!();
const gid = root ? Number(execFileSync('id', ['-g', USER]).toString()) : process.getgid!();

interface Case {
  name: string;
  dir: string;
  touch: string;
}

function mkCase(name: string, dockerfile: string, files: Record<string, string | Buffer>, touch: string): Case {
  const dir = path.join(WORK, 'cases', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [f, d] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), d);
  }
  return { name, dir, touch };
}

function cases(bb: string): Case[] {
  const out = [mkCase('tiny', `FROM ${bb}\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n`, { 'app.txt': 'v0\n' }, 'app.txt')];
  const stages = [1, 2, 3, 4].map((i) => `FROM ${bb} AS s${i}\nRUN sleep 2 && echo ${i} > /out${i}\n`).join('\n');
  const copies = [1, 2, 3, 4].map((i) => `COPY --from=s${i} /out${i} /out${i}`).join('\n');
  out.push(mkCase('parallel', `${stages}\nFROM ${bb}\n${copies}\nCOPY stamp.txt /stamp.txt\n`, { 'stamp.txt': '0\n' }, 'stamp.txt'));
  const files: Record<string, string | Buffer> = {};
  for (let i = 0; i < 4000; i++) files[`src/d${i % 40}/f${i}.txt`] = crypto.randomBytes(512 + (i % 7) * 512).toString('hex');
  files['big1.bin'] = crypto.randomBytes(64 << 20);
  files['big2.bin'] = crypto.randomBytes(64 << 20);
  out.push(mkCase('context', `FROM ${bb}\nCOPY . /ctx\nRUN ls -R /ctx | wc -l\n`, files, 'src/d0/f0.txt'));
  return out;
}

function timed(argv: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: REPO, encoding: 'utf8', env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
  return ms;
}

function img(state: string, c: Case): number {
  const main = DIST ? [path.join(REPO, 'dist/lib/cli/main.js')] : ['--import', 'tsx', path.join(REPO, 'lib/cli/main.ts')];
  const argv = [process.execPath, ...main, '-s', state, 'build', '--progress', 'plain', '-t', `bench/${c.name}`, c.dir];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: WORK, XDG_RUNTIME_DIR: path.join(WORK, 'xdg') };
  const full = root ? ['runuser', '-u', USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : argv;
  return timed(full, process.env);
}

function buildkit(c: Case): number {
  return timed(['docker', 'build', '-q', '-t', `img-bench/${c.name}`, c.dir], { ...process.env, DOCKER_BUILDKIT: '1' });
}

function buildkitReset(bb: string): void {
  spawnSync('docker', ['image', 'rm', '-f', bb, ...['tiny', 'parallel', 'context'].map((n) => `img-bench/${n}`)], { stdio: 'ignore' });
  spawnSync('docker', ['builder', 'prune', '-af'], { stdio: 'ignore' });
}

function buildah(c: Case): number {
  return timed(['buildah', 'bud', '--layers', '--runtime', 'runc', '--tls-verify=false', '-q', '-t', `img-bench/${c.name}`, c.dir], process.env);
}

function buildahReset(bb: string): void {
  // Only what this bench made: its tags and the base image.
  spawnSync('buildah', ['rmi', '--force', bb, ...['tiny', 'parallel', 'context'].map((n) => `img-bench/${n}`)], { stdio: 'ignore' });
  spawnSync('buildah', ['rmi', '--prune'], { stdio: 'ignore' });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  fs.mkdirSync(path.join(WORK, 'xdg'), { mode: 0o700 });
  const reg = await startRegistry();
  try {
    await reg.seed('library/busybox', 'latest', await makeBusyboxImage());
    const bb = `${reg.host}/library/busybox:latest`;
    const all = cases(bb);
    if (root) execFileSync('chown', ['-R', `${uid}:${gid}`, WORK]);
    const results: Record<string, Record<string, Record<string, number>>> = {};
    const tools = ['img', ...(BUILDKIT ? ['buildkit'] : []), ...(BUILDAH ? ['buildah'] : [])];
    for (const c of all) {
      results[c.name] = {};
      for (const tool of tools) {
        const t: Record<string, number[]> = { cold: [], cached: [], touched: [] };
        for (let run = 0; run < RUNS; run++) {
          const state = path.join(WORK, `state-${c.name}-${run}`);
          const go = () => (tool === 'img' ? img(state, c) : tool === 'buildkit' ? buildkit(c) : buildah(c));
          if (tool === 'buildkit') buildkitReset(bb);
          if (tool === 'buildah') buildahReset(bb);
          t.cold.push(go());
          t.cached.push(go());
          fs.appendFileSync(path.join(c.dir, c.touch), `${tool}${run}\n`);
          t.touched.push(go());
        }
        const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(median(v))]));
        results[c.name][tool] = m;
        console.log(`${c.name.padEnd(9)} ${tool.padEnd(9)} cold ${m.cold} ms   cached ${m.cached} ms   touched ${m.touched} ms`);
      }
    }
    const load = os.loadavg()[0];
    fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(REPO, 'bench', 'results', 'build.json'),
      JSON.stringify({ runs: RUNS, cpus: os.cpus().length, loadavg: load, dist: DIST, results }, null, 2) + '\n',
    );
  } finally {
    await reg.stop();
    if (BUILDKIT) buildkitReset(`${reg.host}/library/busybox:latest`);
    if (BUILDAH) buildahReset(`${reg.host}/library/busybox:latest`);
    fs.rmSync(WORK, { recursive: true, force: true });
  }
})();
