// Start-up of img: wall and CPU time from exec to exit, and where it goes —
// img-launch (namespace entry), Node's bootstrap, loading img's modules, and
// the rest (the command's work, exit) — for `img version`, `img ls` and a
// tiny build (FROM busybox from a local registry, RUN + COPY; cold: empty
// state, cached: the same build again), through each way img starts:
//   bin/img           the installed command: sh → img-launch → node dist/img.js (one Node start)
//   node bin/img.js   no sh wrapper: a command that needs the namespace execs img-launch itself
//   no launcher       IMG_LAUNCHER='': img re-executes itself from Node (how img started before img-launch)
//   single binary     build/sea/img, when built (npm run build:sea)
// plus `node -e 0`, the floor. The split comes from `--debug`'s start-up line
// in separate runs (debug output costs a little); the wall times from plain runs.
// Where img starts twice, the split covers the second start; the first is in "rest".
// As root it serves the base image and re-runs itself as the unprivileged test user.
//   npm run build && node --import tsx bench/startup.ts [--runs 7]
// Writes bench/results/startup.json.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const RUNS = Number(opt('runs', '7'));
const USER = process.env.IMG_TEST_USER || 'imgtest';
const SEA = path.join(REPO, 'build', 'sea', 'img');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const round = (x: number) => Math.round(x * 10) / 10;

interface Split {
  launcher: number;
  node: number;
  modules: number;
}

// The `DEBU start-up:` line of one run (the Node start that ran the command).
function parseSplit(stderr: string): Split {
  const s: Split = { launcher: 0, node: 0, modules: 0 };
  for (const m of stderr.matchAll(/^DEBU start-up: (?:img-launch ([\d.]+) ms, )?Node ([\d.]+) ms, modules ([\d.]+) ms, work [\d.]+ ms$/gm)) {
    s.launcher += Number(m[1] ?? 0);
    s.node += Number(m[2]);
    s.modules += Number(m[3]);
  }
  return s;
}

interface Way {
  name: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  // Node starts for a command that needs the namespace (the first one execs or
  // re-executes before main(), so it prints no start-up line of its own).
  nsStarts: number;
}

const NAMESPACE_COMMANDS = new Set(['version', 'tiny build, cold', 'tiny build, cached']);

function ways(): Way[] {
  const out: Way[] = [
    { name: 'bin/img', argv: [path.join(REPO, 'bin', 'img')], nsStarts: 1 },
    { name: 'node bin/img.js', argv: [process.execPath, path.join(REPO, 'bin', 'img.js')], nsStarts: 2 },
    { name: 'no launcher', argv: [process.execPath, path.join(REPO, 'bin', 'img.js')], env: { IMG_LAUNCHER: '' }, nsStarts: 2 },
  ];
  if (fs.existsSync(SEA)) out.push({ name: 'single binary', argv: [SEA], nsStarts: 2 });
  return out;
}

// Wall time, and the CPU time of the whole process tree (GNU time's user +
// system of every waited-for descendant: steadier than wall time on a busy host).
function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string): { ms: number; cpuMs: number; stderr: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', ...argv], { env, cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}\n${r.stderr}`);
  const cpu = /^cpu ([\d.]+) ([\d.]+)$/m.exec(r.stderr);
  return { ms, cpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : NaN, stderr: r.stderr };
}

function measure(work: string, registry: string) {
  const ctx = path.join(work, 'ctx');
  fs.mkdirSync(ctx, { recursive: true });
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${registry}/library/busybox:latest\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n`);
  fs.writeFileSync(path.join(ctx, 'app.txt'), 'v0\n');
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, XDG_RUNTIME_DIR: path.join(work, 'xdg'), XDG_CACHE_HOME: path.join(work, 'cache') };
  fs.mkdirSync(env.XDG_RUNTIME_DIR!, { recursive: true, mode: 0o700 });
  let n = 0;
  const fresh = () => path.join(work, `state-${n++}`);
  const cachedState = fresh();
  const commands: Record<string, (state: string) => string[]> = {
    version: (s) => ['-s', s, 'version'],
    ls: (s) => ['-s', s, 'ls'],
    'tiny build, cold': (s) => ['-s', s, 'build', '--progress', 'plain', '-t', 'tiny', ctx],
    'tiny build, cached': () => ['-s', cachedState, 'build', '--progress', 'plain', '-t', 'tiny', ctx],
  };
  const rows: Record<string, Record<string, { wallMs: number; cpuMs: number; launcherMs: number; nodeMs: number; modulesMs: number; restMs: number; nodeStarts: number }>> = {};
  const floor: number[] = [];
  for (const way of ways()) {
    const e = { ...env, ...way.env };
    run([...way.argv, ...commands['tiny build, cold'](cachedState)], e, work); // fills the cached state, warms caches
    for (const [cmd, argsOf] of Object.entries(commands)) {
      const walls: number[] = [];
      const cpus: number[] = [];
      const splits: Split[] = [];
      for (let i = 0; i < RUNS; i++) {
        const plain = run([...way.argv, ...argsOf(fresh())], e, work);
        walls.push(plain.ms);
        cpus.push(plain.cpuMs);
        splits.push(parseSplit(run([...way.argv, '--debug', ...argsOf(fresh())], e, work).stderr));
        floor.push(run([process.execPath, '-e', '0'], env, work).ms);
      }
      const wall = median(walls);
      const pick = (k: keyof Split) => median(splits.map((s) => s[k]));
      const [launcherMs, nodeMs, modulesMs] = [pick('launcher'), pick('node'), pick('modules')];
      (rows[way.name] ??= {})[cmd] = {
        wallMs: round(wall),
        cpuMs: round(median(cpus)),
        launcherMs: round(launcherMs),
        nodeMs: round(nodeMs),
        modulesMs: round(modulesMs),
        restMs: round(wall - launcherMs - nodeMs - modulesMs),
        // `version` enters only where a launcher runs; without one it reports "not entered".
        nodeStarts: NAMESPACE_COMMANDS.has(cmd) && !(way.name === 'no launcher' && cmd === 'version') ? way.nsStarts : 1,
      };
    }
  }
  return { date: new Date().toISOString(), loadavg: os.loadavg().map(round), runs: RUNS, nodeFloorMs: round(median(floor)), rows };
}

function print(r: ReturnType<typeof measure>) {
  console.log(`median of ${r.runs} runs, ms (load average ${r.loadavg.join(' ')}); node -e 0: ${r.nodeFloorMs} ms`);
  console.log(`${'way'.padEnd(16)} ${'command'.padEnd(20)} ${'wall'.padStart(7)} ${'cpu'.padStart(7)} ${'launch'.padStart(7)} ${'node'.padStart(7)} ${'modules'.padStart(7)} ${'rest'.padStart(7)}  starts`);
  for (const [way, cmds] of Object.entries(r.rows))
    for (const [cmd, v] of Object.entries(cmds))
      console.log(
        `${way.padEnd(16)} ${cmd.padEnd(20)} ${String(v.wallMs).padStart(7)} ${String(v.cpuMs).padStart(7)} ${String(v.launcherMs).padStart(7)} ${String(v.nodeMs).padStart(7)} ${String(v.modulesMs).padStart(7)} ${String(v.restMs).padStart(7)}  ${v.nodeStarts}`,
      );
}

async function main() {
  const wi = args.indexOf('--work');
  if (wi >= 0) {
    process.stdout.write(JSON.stringify(measure(args[wi + 1], opt('registry', ''))));
    return;
  }
  if (!fs.existsSync(path.join(REPO, 'dist', 'img.js'))) throw new Error('dist/img.js is missing: run `npm run build` first');
  const { startRegistry } = await import('../test/fixtures/registry');
  const { makeBusyboxImage } = await import('../test/fixtures/images');
  const reg = await startRegistry();
  // Not /tmp by default: see side-by-side.ts's WORK (a crowded /tmp slows every file created there).
  const work = fs.mkdtempSync(path.join(opt('work', '/var/tmp'), 'img-bench-startup-'));
  try {
    await reg.seed('library/busybox', 'latest', await makeBusyboxImage());
    let result: ReturnType<typeof measure>;
    if (process.getuid!() === 0) {
      fs.chmodSync(work, 0o755);
      spawnSync('chown', [USER, work]);
      const r = spawnSync('runuser', ['-u', USER, '--', process.execPath, ...process.execArgv, __filename, '--runs', String(RUNS), '--work', work, '--registry', reg.host], {
        cwd: REPO,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      if (r.status !== 0) throw new Error(`as ${USER}: ${r.stderr}`);
      result = JSON.parse(r.stdout);
    } else {
      result = measure(work, reg.host);
    }
    fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'bench', 'results', 'startup.json'), JSON.stringify(result, null, 2) + '\n');
    print(result);
  } finally {
    await reg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
