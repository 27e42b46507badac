// A two-platform build (linux/amd64 + linux/arm64 in one `img build`) against
// the two single-platform builds done one after the other on one state dir,
// cold each time, and what runs once for both platforms. The Dockerfile is the
// usual cross-compiling shape: a build-platform stage that every target shares
// (context copy + work), a build-platform stage per target (ARG TARGETARCH),
// and a final stage on the target's base with one RUN (emulated for arm64).
// Needs QEMU's arm64 handler and the arm64 busybox (.ci/setup-host).
//   node --import tsx bench/multiplatform.ts [--runs 3] [--user imgtest] [--dist]
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkEmulation } from '../lib/exec/binfmt';
import { makeMultiArchBusybox } from '../test/fixtures/images';
import { startRegistry } from '../test/fixtures/registry';

const REPO = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const RUNS = Number(opt('runs', '3'));
const USER = opt('user', 'imgtest');
const DIST = args.includes('--dist');
const root = process.getuid?.() === 0;
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-multiplatform-'));
const uid = root ? Number(execFileSync('id', ['-u', USER]).toString()) : process.getuid!();
const gid = root ? Number(execFileSync('id', ['-g', USER]).toString()) : process.getgid!();

interface Run {
  ms: number;
  executed: string[]; // step names that ran (not CACHED)
}

function img(state: string, ctx: string, platforms: string): Run {
  const main = DIST ? [path.join(REPO, 'dist/lib/cli/main.js')] : ['--import', 'tsx', path.join(REPO, 'lib/cli/main.ts')];
  const argv = [process.execPath, ...main, '-s', state, 'build', '--progress', 'plain', '--platform', platforms, '-o', `type=local,dest=${path.join(WORK, 'out')}`, ctx];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: WORK, XDG_RUNTIME_DIR: path.join(WORK, 'xdg') };
  const full = root ? ['runuser', '-u', USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { cwd: REPO, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
  // "#N name" then "#N DONE" for a step that ran.
  const names = new Map<string, string>();
  const executed: string[] = [];
  for (const line of r.stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    if (!names.has(m[1])) names.set(m[1], m[2]);
    else if (m[2].startsWith('DONE') && /^\[/.test(names.get(m[1])!) && !/internal\]/.test(names.get(m[1])!)) executed.push(names.get(m[1])!);
  }
  return { ms, executed };
}

function freshState(): string {
  const s = fs.mkdtempSync(path.join(WORK, 'state-'));
  fs.chownSync(s, uid, gid);
  return s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const emu = checkEmulation('arm64');
  if (!emu.ok) throw new Error(`arm64 binaries do not run here (${emu.reason}): run .ci/setup-host`);
  fs.mkdirSync(path.join(WORK, 'xdg'), { mode: 0o700 });
  const reg = await startRegistry();
  try {
    await reg.seed('library/busybox', 'latest', await makeMultiArchBusybox());
    const bb = `${reg.host}/library/busybox`;
    const ctx = path.join(WORK, 'ctx');
    fs.mkdirSync(path.join(ctx, 'src'), { recursive: true });
    for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(ctx, 'src', `f${i}.txt`), crypto.randomBytes(2048).toString('hex'));
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      [
        `FROM --platform=$BUILDPLATFORM ${bb} AS deps`,
        'COPY src /src',
        // Shared work: the same for every target (a dependency download, a code generator).
        'RUN sleep 2 && cat /src/* | sha256sum > /deps.sum',
        `FROM --platform=$BUILDPLATFORM ${bb} AS build`,
        'ARG TARGETARCH',
        'COPY --from=deps /deps.sum /deps.sum',
        // Per target, on the build platform: a cross compiler's run.
        'RUN sleep 1 && echo "built for $TARGETARCH on $(uname -m)" > /app',
        `FROM ${bb}`,
        'COPY --from=build /app /app',
        // On the target (emulated for arm64): a short shell loop.
        "RUN i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; uname -m > /arch",
        '',
      ].join('\n'),
    );
    execFileSync('chown', ['-R', `${uid}:${gid}`, WORK]);

    const both: number[] = [];
    const sequential: number[] = [];
    let bothRun: Run | null = null;
    let seqRuns: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = img(freshState(), ctx, 'linux/amd64,linux/arm64');
      both.push(r.ms);
      bothRun = r;
      const s = freshState();
      const a = img(s, ctx, 'linux/amd64');
      const b = img(s, ctx, 'linux/arm64');
      sequential.push(a.ms + b.ms);
      seqRuns = [a, b];
    }
    // What runs once for both: steps that an amd64-only and an arm64-only build
    // on separate empty state dirs both run, and the two-platform build runs once
    // (a step per target shows twice there, under each platform's name).
    const alone = img(freshState(), ctx, 'linux/arm64');
    const unprefixed = bothRun!.executed.map((n) => n.replace(/^\[linux\/\S+ /, '['));
    const shared = seqRuns[0].executed.filter((n) => alone.executed.includes(n) && unprefixed.filter((u) => u === n).length === 1);
    const rows = [
      ['two-platform build (one img build)', (median(both) / 1000).toFixed(2), String(bothRun!.executed.length)],
      ['amd64 then arm64 (two img builds, one state dir)', (median(sequential) / 1000).toFixed(2), String(seqRuns[0].executed.length + seqRuns[1].executed.length)],
      ['amd64 and arm64 on separate state dirs (no sharing)', '', String(seqRuns[0].executed.length + alone.executed.length)],
    ];
    console.log(`runs: ${RUNS} (median), cold state each time\n`);
    console.log('| case | seconds | steps run |\n|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
    console.log(`\nsteps both single-platform builds run, once for both in the two-platform build:\n${shared.map((n) => `  ${n}`).join('\n')}`);
    console.log(`\nsteps run in the two-platform build:\n${bothRun!.executed.map((n) => `  ${n}`).join('\n')}`);
    fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(REPO, 'bench', 'results', 'multiplatform.json'),
      JSON.stringify({ date: new Date().toISOString(), runs: RUNS, twoPlatformMs: median(both), sequentialMs: median(sequential), executed: bothRun!.executed, sharedOnce: shared }, null, 2) + '\n',
    );
  } finally {
    await reg.stop();
    spawnSync('rm', ['-rf', WORK]);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
