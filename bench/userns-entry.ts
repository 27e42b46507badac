// Cost of entering the user namespace: a minimal command that calls
// enterUserNamespace() and exits, entered by img-launch before Node starts
// (how bin/img runs), by the door exec'ing img-launch (img started without
// it), by img's own re-exec from Node (IMG_LAUNCHER='': how img entered before
// img-launch), against no entry at all (IMG_USERNS=1 preset, so the door
// returns at once); as a bundled .js (how an installed img starts) and
// through tsx (dev). Plus img-launch alone in front of /bin/true.
//   node --import tsx bench/userns-entry.ts [--runs 21]
// As root it re-runs itself as the unprivileged test user (imgtest).
// Writes bench/results/userns-entry.json.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');
const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1] || 21) || 21;
const USER = process.env.IMG_TEST_USER || 'imgtest';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// The namespace setup alone (clone, newuidmap + newgidmap, release, exec
// /bin/true, wait), without a second Node start.
function measureSetup(work: string): number {
  const script = path.join(work, 'setup.ts');
  fs.writeFileSync(
    script,
    `import { spawnInUserNamespace } from ${JSON.stringify(path.join(REPO, 'lib/exec/userns'))};\n` +
      `import { loadAddon } from ${JSON.stringify(path.join(REPO, 'lib/host'))};\n` +
      `(async () => { const t: number[] = []; for (let i = 0; i < ${RUNS + 1}; i++) { const s = performance.now();\n` +
      `  await loadAddon().waitpid(await spawnInUserNamespace(['/bin/true'])); t.push(performance.now() - s); }\n` +
      `  process.stdout.write(JSON.stringify(t.slice(1))); })();\n`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.IMG_USERNS;
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { env, cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`setup: ${r.stderr}`);
  return Math.round(median(JSON.parse(r.stdout)) * 10) / 10;
}

function measure(work: string) {
  const entryTs = path.join(work, 'entry.ts');
  fs.writeFileSync(
    entryTs,
    `import { enterUserNamespace } from ${JSON.stringify(path.join(REPO, 'lib/exec/userns'))};\n` +
      `enterUserNamespace().then(() => process.stdout.write(String(process.getuid!())));\n`,
  );
  const entryJs = path.join(work, 'entry.js');
  const b = spawnSync(path.join(REPO, 'node_modules/.bin/esbuild'), [entryTs, '--bundle', '--platform=node', '--format=cjs', `--outfile=${entryJs}`, '--log-level=error']);
  if (b.status !== 0) throw new Error(`esbuild: ${b.stderr}`);
  const base: NodeJS.ProcessEnv = { ...process.env, IMG_ADDON_PATH: path.join(REPO, 'build/Release/img_addon.node') };
  delete base.IMG_USERNS;
  delete base.IMG_ENTRY;
  // With the marker preset the door returns at once (and the uid stays the caller's).
  const noHop = { ...base, IMG_USERNS: '1' };
  const noLauncher = { ...base, IMG_LAUNCHER: '' };
  const launcher = path.join(REPO, 'build/Release/img-launch');
  const js = [process.execPath, entryJs];
  const tsx = [process.execPath, '--import', 'tsx', entryTs];
  const cases: Record<string, { argv: string[]; env: NodeJS.ProcessEnv; hop: boolean }> = {
    'js, no hop': { argv: js, env: noHop, hop: false },
    'js, img-launch first': { argv: [launcher, 'enter', ...js], env: base, hop: true },
    'js, door execs img-launch': { argv: js, env: base, hop: true },
    'js, re-exec from Node': { argv: js, env: noLauncher, hop: true },
    'tsx, no hop': { argv: tsx, env: noHop, hop: false },
    'tsx, img-launch first': { argv: [launcher, 'enter', ...tsx], env: base, hop: true },
    'tsx, re-exec from Node': { argv: tsx, env: noLauncher, hop: true },
    '/bin/true': { argv: ['/bin/true'], env: base, hop: false },
    'img-launch /bin/true': { argv: [launcher, 'enter', '/bin/true'], env: base, hop: false },
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  const run = (k: string) => {
    const c = cases[k];
    const t = process.hrtime.bigint();
    const r = spawnSync(c.argv[0], c.argv.slice(1), { env: c.env, cwd: REPO, encoding: 'utf8' });
    const hopped = r.stdout === '0';
    if (r.status !== 0 || (c.argv[0] !== '/bin/true' && c.argv.at(-1) !== '/bin/true' && hopped !== c.hop)) throw new Error(`${k}: exit ${r.status}, uid ${r.stdout}: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  for (const k of Object.keys(cases)) run(k); // warm-up
  for (let i = 0; i < RUNS; i++) for (const k of Object.keys(cases)) times[k].push(run(k));
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v) * 10) / 10]));
  return {
    date: new Date().toISOString(),
    loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10),
    runs: RUNS,
    medianMs: med,
    setupOnlyMs: measureSetup(work),
    hopCostMs: {
      'js, img-launch first': Math.round((med['js, img-launch first'] - med['js, no hop']) * 10) / 10,
      'js, door execs img-launch': Math.round((med['js, door execs img-launch'] - med['js, no hop']) * 10) / 10,
      'js, re-exec from Node': Math.round((med['js, re-exec from Node'] - med['js, no hop']) * 10) / 10,
      'tsx, img-launch first': Math.round((med['tsx, img-launch first'] - med['tsx, no hop']) * 10) / 10,
      'tsx, re-exec from Node': Math.round((med['tsx, re-exec from Node'] - med['tsx, no hop']) * 10) / 10,
      'img-launch alone': Math.round((med['img-launch /bin/true'] - med['/bin/true']) * 10) / 10,
    },
  };
}

function main() {
  if (process.getuid!() === 0) {
    // Re-run as the unprivileged user; it prints the JSON, we store it.
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-userns-'));
    fs.chmodSync(work, 0o777);
    try {
      const r = spawnSync('runuser', ['-u', USER, '--', process.execPath, ...process.execArgv, __filename, '--runs', String(RUNS), '--work', work], {
        cwd: REPO,
        env: { ...process.env, HOME: work, TMPDIR: work },
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`as ${USER}: ${r.stderr}`);
      write(JSON.parse(r.stdout));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    return;
  }
  const wi = process.argv.indexOf('--work');
  if (wi > 0) {
    process.stdout.write(JSON.stringify(measure(process.argv[wi + 1])));
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-userns-'));
  try {
    write(measure(work));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function write(result: ReturnType<typeof measure>) {
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, 'bench', 'results', 'userns-entry.json'), JSON.stringify(result, null, 2) + '\n');
  for (const [k, v] of Object.entries(result.medianMs)) console.log(`${k.padEnd(28)} ${v} ms`);
  for (const [k, v] of Object.entries(result.hopCostMs)) console.log(`entry cost, ${k.padEnd(28)} ${v} ms`);
  console.log(`median of ${result.runs}; Node's own entry (clone + newuidmap/newgidmap + exec /bin/true, from a running Node): ${result.setupOnlyMs} ms; load average ${result.loadavg.join(' ')}`);
}

main();
