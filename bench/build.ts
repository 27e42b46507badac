// img build timings as the unprivileged user: cold (empty state; base image
// already in the store, so no pull), cached (nothing changed), touched (one
// context file's content changed). Median of --runs runs per phase.
//   node --import tsx bench/build.ts [--runs 3] [--user imgtest]
// Runs img from source through tsx (≈0.4 s of startup per run included).
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBusyboxImage } from '../test/fixtures/images';

const REPO = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const RUNS = Number(opt('runs', '3'));
const USER = opt('user', 'imgtest');
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

function cases(): Case[] {
  const out = [mkCase('tiny', 'FROM busybox\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n', { 'app.txt': 'v0\n' }, 'app.txt')];
  const stages = [1, 2, 3, 4].map((i) => `FROM busybox AS s${i}\nRUN sleep 2 && echo ${i} > /out${i}\n`).join('\n');
  const copies = [1, 2, 3, 4].map((i) => `COPY --from=s${i} /out${i} /out${i}`).join('\n');
  out.push(mkCase('parallel', `${stages}\nFROM busybox\n${copies}\nCOPY stamp.txt /stamp.txt\n`, { 'stamp.txt': '0\n' }, 'stamp.txt'));
  const files: Record<string, string | Buffer> = {};
  for (let i = 0; i < 4000; i++) files[`src/d${i % 40}/f${i}.txt`] = crypto.randomBytes(512 + (i % 7) * 512).toString('hex');
  files['big1.bin'] = crypto.randomBytes(64 << 20);
  files['big2.bin'] = crypto.randomBytes(64 << 20);
  out.push(mkCase('context', 'FROM busybox\nCOPY . /ctx\nRUN ls -R /ctx | wc -l\n', files, 'src/d0/f0.txt'));
  return out;
}

function img(state: string, c: Case): number {
  const argv = [process.execPath, '--import', 'tsx', path.join(REPO, 'lib/cli/main.ts'), '-s', state, 'build', '--progress', 'plain', '-t', `bench/${c.name}`, c.dir];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: WORK, XDG_RUNTIME_DIR: path.join(WORK, 'xdg') };
  const full = root ? ['runuser', '-u', USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { cwd: REPO, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`img build ${c.name} failed:\n${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  fs.mkdirSync(path.join(WORK, 'xdg'), { mode: 0o700 });
  const all = cases();
  if (root) execFileSync('chown', ['-R', `${uid}:${gid}`, WORK]);
  const bb = await makeBusyboxImage();
  const results: Record<string, Record<string, number>> = {};
  for (const c of all) {
    const t: Record<string, number[]> = { cold: [], cached: [], touched: [] };
    for (let run = 0; run < RUNS; run++) {
      const state = path.join(WORK, `state-${c.name}-${run}`);
      await bb.writeToStore(state, 'busybox:latest');
      if (root) execFileSync('chown', ['-R', `${uid}:${gid}`, state]);
      t.cold.push(img(state, c));
      t.cached.push(img(state, c));
      fs.appendFileSync(path.join(c.dir, c.touch), `${run}\n`);
      t.touched.push(img(state, c));
    }
    results[c.name] = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(median(v))]));
    console.log(`${c.name.padEnd(9)} cold ${results[c.name].cold} ms   cached ${results[c.name].cached} ms   touched ${results[c.name].touched} ms`);
  }
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, 'bench', 'results', 'build.json'), JSON.stringify({ runs: RUNS, cpus: os.cpus().length, results }, null, 2) + '\n');
  fs.rmSync(WORK, { recursive: true, force: true });
})();
