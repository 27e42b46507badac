// Whole-build benchmark: img against rootless BuildKit and rootless buildah as users
// get them from Debian, all three as the same unprivileged user, same machine, same
// base images from one local registry, runs interleaved across tools.
//
//   npm run build && node --import tsx bench/side-by-side.ts [--runs 5] [--cases tiny,parallel,context,debian]
//                     [--tools img,buildkit,buildah] [--img-user imgtest] [--img-compression uncompressed|gzip] [--no-save] [--keep]
//
// Run as root (Debian packages: docker.io rootlesskit buildah debootstrap; the user needs
// /etc/subuid and /etc/subgid ranges). What each tool is:
// - img: `bin/img build` (img-launch → Node once), state in a fresh directory.
// - BuildKit: Debian's docker.io dockerd (20.10, BuildKit v0.8 inside) started rootless by
//   its contrib dockerd-rootless.sh under Debian's rootlesskit, with
//   DOCKERD_ROOTLESS_ROOTLESSKIT_NET=host (the script's default slirp4netns disables host
//   loopback, where the registry is) and `--iptables=false --ip-forward=false --bridge=none`
//   (a host network namespace is not the daemon's to change); builds are
//   `DOCKER_BUILDKIT=1 /usr/bin/docker build --network=none -q -t NAME DIR`.
// - buildah: `buildah bud --layers --storage-driver overlay --network none -q -t NAME DIR`
//   with its own --root/--runroot.
//
// Exports: neither side compresses. dockerd's BuildKit (docker driver) stores into dockerd's
// image store, whose layers are uncompressed, and buildah's containers-storage is
// uncompressed too; img stores the image with `-o type=image,name=NAME,compression=uncompressed`.
// `--img-compression gzip` times img's default (gzip layers in its store) instead.
//
// Phases per case: cold (empty state: no cache, base image not present), cached (same
// build again, nothing changed), touched (one context file changed). Each round gives
// every tool a fresh state (see SETTLE), waits --settle seconds, runs every tool's cold, then every
// tool's cached, then touches the file once and runs every tool's touched build, so load
// drifts hit all tools alike. Prints medians and
// ratios and writes bench/results/side-by-side.{json,md}.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { writeOciLayout } from '../test/archive/oci';
import { makeBusyboxImage } from '../test/fixtures/images';
import { startRegistry, type Registry } from '../test/fixtures/registry';
import { flag, option } from './options';

const REPO = path.resolve(__dirname, '..');
const RUNS = Number(option('runs', '3'));
const CASES = option('cases', 'tiny,parallel,context,debian').split(',');
const USER = option('img-user', 'imgtest');
const IMG_COMPRESSION = option('img-compression', 'uncompressed');
const ONLY = option('tools', 'img,buildkit,buildah').split(',');
const SAVE = !flag('no-save'); // short development runs leave bench/results alone
// --trace FILE: one JSON line per timed build ({label, start, end} in ms since the epoch), to line
// builds up with a host sampler's record (disk, CPU, which processes ran) when a cell is slow.
const TRACE = option('trace', '');
// Nothing is deleted while the bench runs: every round gives every tool a fresh state directory
// (img --state, buildah --root, a new dockerd with its own --data-root) and the old ones stay until
// the end. This host's ext4 has no journal, and then the kernel checks every free inode it passes
// when it allocates one and skips those freed within the last 60 s, or 360 s once their inode
// table block is dirty again — which the next build's own file creations make it (perf: 30% of
// all CPU in ext4's recently_deleted + find_get_block). A build creating files where a previous
// round's state was just removed spent two to three times the system time (img's debian FROM
// 1.3 s → 3.5-4.5 s; BuildKit's prune hit it the same way). Seconds of quiet before each round's
// cold builds (after the daemon restart):
const SETTLE = Number(option('settle', '5'));
// This VM runs DAMON's proactive page-out (kdamond, scheme `pageout`, min age 12 × 0.5 s): any
// page-cache page idle for 6 s is reclaimed, so whichever tool ran after a pause (every cold
// build follows the settle) re-read its programs and libraries from disk — img's parallel cold
// 2.83-2.87 s after 61 s idle, 2.50 s right after another build, 2.62 s after 61 s with it off.
// Ordinary hosts keep the page cache: it is switched off for the run (as root) and restored
// after; --keep-damon leaves it on.
const DAMON_STATE = '/sys/kernel/mm/damon/admin/kdamonds/0/state';
// Every tool's state, the contexts and the registry live under one directory in --work
// (default /var/tmp). Not /tmp: on the machine these figures come from, test runs had filled
// /tmp's neighbourhood of the disk (40 GB, thousands of temp dirs), and files created there
// took the kernel longer to place (img's parallel cold: 2.7-2.9 s under /tmp, 2.4-2.5 s in
// /var/tmp or an older directory of /tmp; each FROM 120-230 ms against 70).
const WORK = fs.mkdtempSync(path.join(option('work', '/var/tmp'), 'img-side-by-side-'));
const CACHE = '/var/tmp/img-bench-cache';
fs.chmodSync(WORK, 0o755);
const UID = Number(execFileSync('id', ['-u', USER]).toString().trim());

type Phase = 'cold' | 'cached' | 'touched';
const PHASES: Phase[] = ['cold', 'cached', 'touched'];
interface CaseDef {
  name: string;
  describe: string;
  dir: string;
  touch: string; // context file changed in the touched phase
  sleeps?: number; // seconds the workload itself waits on its critical path, in every tool
}

// Runs argv as the unprivileged user with exactly `env` (plus PATH).
function asUser(argv: string[], env: Record<string, string>): void {
  const e = Object.entries({ PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', ...env }).map(([k, v]) => `${k}=${v}`);
  const r = spawnSync('runuser', ['-u', USER, '--', 'env', '-i', ...e, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
}

function sh(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
}

// A failed build is reported and counted as NaN, so one tool's failure does not
// end the whole comparison.
function timed(label: string, fn: () => void): number {
  // Untimed: what the previous build (any tool's) left dirty is written back first, so its
  // writeback is not charged to the next build (the kernel flushes it during whichever runs next).
  execFileSync('sync');
  const start = Date.now();
  const t = process.hrtime.bigint();
  try {
    fn();
  } catch (err) {
    console.error(`  ${label} failed: ${(err as Error).message.split('\n').slice(0, 4).join(' ')}`);
    return NaN;
  } finally {
    if (TRACE) fs.appendFileSync(TRACE, JSON.stringify({ label, start, end: Date.now() }) + '\n');
  }
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function median(all: number[]): number {
  const xs = all.filter((x) => !Number.isNaN(x));
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function userDir(name: string): string {
  const dir = path.join(WORK, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, UID, UID);
  return dir;
}

// ------------------------------------------------------------------ registry + base images

// One-layer OCI layout from a rootfs tar (for the debootstrap base).
function layoutFromTar(tarFile: string, dir: string): void {
  const tar = fs.readFileSync(tarFile);
  const gzFile = path.join(WORK, 'debian-layer.tar.gz');
  const gz = zlib.gzipSync(tar, { level: 1 });
  fs.writeFileSync(gzFile, gz);
  const dg = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
  writeOciLayout(dir, [{ file: gzFile, digest: dg(gz), diffId: dg(tar), size: gz.length, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }]);
}

function debianRootfsTar(): string | null {
  const tarFile = path.join(CACHE, 'debian-minbase.tar');
  if (fs.existsSync(tarFile)) return tarFile;
  fs.mkdirSync(CACHE, { recursive: true });
  const root = path.join(CACHE, 'debian-rootfs');
  console.error('debootstrap --variant=minbase bookworm (once; cached in %s)…', CACHE);
  const r = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', root], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) return null;
  sh('tar', ['-C', root, '--numeric-owner', '-cf', tarFile, '.']);
  return tarFile;
}

async function pushBases(registry: Registry): Promise<{ busybox: string; debian: string | null }> {
  const reg = registry.host;
  await registry.seed('library/busybox', 'latest', await makeBusyboxImage());
  let debian: string | null = null;
  if (CASES.includes('debian')) {
    const tar = debianRootfsTar();
    if (tar) {
      const dir = path.join(WORK, 'debian-oci');
      layoutFromTar(tar, dir);
      sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:latest`, `docker://${reg}/library/debian-minbase:latest`]);
      debian = `${reg}/library/debian-minbase:latest`;
    } else console.error('debootstrap failed: the debian case is skipped');
  }
  return { busybox: `${reg}/library/busybox:latest`, debian };
}

// ------------------------------------------------------------------ cases

function writeCases(bases: { busybox: string; debian: string | null }): CaseDef[] {
  const out: CaseDef[] = [];
  const mk = (name: string, describe: string, dockerfile: string, files: Record<string, string | Buffer>, touch: string, sleeps?: number) => {
    const dir = path.join(WORK, 'cases', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [f, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), data);
    }
    out.push({ name, describe, dir, touch, sleeps });
  };
  const bb = bases.busybox;
  if (CASES.includes('tiny')) {
    mk('tiny', 'RUN + COPY on busybox', `FROM ${bb}\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n`, { 'app.txt': 'v0\n' }, 'app.txt');
  }
  if (CASES.includes('parallel')) {
    const stages = [1, 2, 3, 4].map((i) => `FROM ${bb} AS s${i}\nRUN sleep 2 && echo ${i} > /out${i}\n`).join('\n');
    const copies = [1, 2, 3, 4].map((i) => `COPY --from=s${i} /out${i} /out${i}`).join('\n');
    mk('parallel', 'four independent 2 s stages copied into a final stage', `${stages}\nFROM ${bb}\n${copies}\nCOPY stamp.txt /stamp.txt\n`, { 'stamp.txt': '0\n' }, 'stamp.txt', 2);
  }
  if (CASES.includes('context')) {
    const files: Record<string, string | Buffer> = {};
    for (let i = 0; i < 4000; i++) files[`src/d${i % 40}/f${i}.txt`] = crypto.randomBytes(512 + (i % 7) * 512).toString('hex');
    files['big1.bin'] = crypto.randomBytes(64 << 20);
    files['big2.bin'] = crypto.randomBytes(64 << 20);
    mk('context', '150 MiB context: 4,000 small + two 64 MiB files', `FROM ${bb}\nCOPY . /ctx\nRUN ls -R /ctx | wc -l\n`, files, 'src/d0/f0.txt');
  }
  if (CASES.includes('debian') && bases.debian) {
    const runs = ['a', 'b', 'c'].map((x) => `RUN head -c 70000000 /dev/urandom > /data-${x}`).join('\n');
    mk('debian', 'debian minbase + three RUN layers writing 200 MiB', `FROM ${bases.debian}\n${runs}\nCOPY stamp.txt /stamp.txt\n`, { 'stamp.txt': '0\n' }, 'stamp.txt');
  }
  return out;
}

// ------------------------------------------------------------------ tools

interface Tool {
  name: string;
  build(c: CaseDef): void;
  // A new, empty state for the next round (the previous one is kept until the run ends).
  fresh(): Promise<void>;
  stop?(): Promise<void>;
}

function imgTool(): Tool {
  const home = userDir('img');
  let round = 0;
  let state = path.join(home, 'state-0');
  const env = { HOME: `/home/${USER}`, XDG_RUNTIME_DIR: userDir('img/run') };
  const output = (c: CaseDef) =>
    IMG_COMPRESSION === 'gzip' ? ['-t', `bench/${c.name}:latest`] : ['-o', `type=image,name=bench/${c.name}:latest,compression=${IMG_COMPRESSION}`];
  return {
    name: 'img',
    build: (c) => asUser([path.join(REPO, 'bin', 'img'), '--state', state, 'build', '-q', ...output(c), c.dir], env),
    fresh: async () => {
      state = path.join(home, `state-${++round}`);
    },
  };
}

// Debian's dockerd, rootless under rootlesskit, as its contrib script starts it. Each round
// starts a new daemon on a new --data-root (the previous daemon stopped, its data kept).
function buildkitTool(): Tool {
  const home = userDir('docker');
  const run = userDir('docker/run');
  const sock = path.join(run, 'docker.sock');
  const env = { HOME: home, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '1' };
  let daemon: ChildProcess | null = null;
  let round = 0;
  const docker = (argv: string[]) => asUser(['/usr/bin/docker', ...argv], env);
  const stop = async () => {
    if (!daemon?.pid || daemon.exitCode !== null) return;
    const exited = new Promise((r) => daemon!.once('exit', r));
    try {
      process.kill(-daemon.pid, 'SIGTERM');
    } catch {
      return;
    }
    await exited;
  };
  return {
    name: 'buildkit',
    async fresh() {
      await stop();
      round++;
      const e = {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: home,
        XDG_RUNTIME_DIR: run,
        DOCKERD_ROOTLESS_ROOTLESSKIT_NET: 'host',
        DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: 'none',
      };
      const logFile = path.join(WORK, 'dockerd.log');
      fs.appendFileSync(logFile, `--- round ${round}: data-root data-${round}\n`);
      const log = fs.openSync(logFile, 'a');
      daemon = spawn(
        'runuser',
        ['-u', USER, '--', 'env', '-i', ...Object.entries(e).map(([k, v]) => `${k}=${v}`), '/usr/share/docker.io/contrib/dockerd-rootless.sh',
          '--data-root', path.join(home, `data-${round}`), '--exec-root', path.join(run, `docker-${round}`), '-H', `unix://${sock}`,
          '--pidfile', path.join(run, 'docker.pid'), '--iptables=false', '--ip-forward=false', '--bridge=none'],
        { stdio: ['ignore', log, log], detached: true },
      );
      fs.closeSync(log);
      for (let i = 0; i < 300; i++) {
        if (daemon.exitCode !== null) break;
        if (fs.existsSync(sock) && spawnSync('runuser', ['-u', USER, '--', 'env', `DOCKER_HOST=unix://${sock}`, '/usr/bin/docker', 'info'], { stdio: 'ignore' }).status === 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`rootless dockerd did not start; see ${logFile}`);
    },
    build: (c) => docker(['build', '--network=none', '-q', '-t', `bench/${c.name}:latest`, c.dir]),
    stop,
  };
}

function buildahTool(): Tool {
  const home = userDir('buildah');
  let round = 0;
  let root = '';
  let runroot = '';
  const buildah = (argv: string[]) =>
    asUser(['buildah', '--root', root, '--runroot', runroot, '--storage-driver', 'overlay', ...argv], { HOME: home, XDG_RUNTIME_DIR: runroot });
  return {
    name: 'buildah',
    build: (c) => buildah(['bud', '--layers', '--network', 'none', '--tls-verify=false', '-q', '-t', `bench/${c.name}:latest`, c.dir]),
    fresh: async () => {
      round++;
      root = path.join(home, `storage-${round}`);
      runroot = userDir(`buildah/run-${round}`);
    },
  };
}

// ------------------------------------------------------------------ main

type Results = Record<string, Record<Phase, Record<string, number[]>>>;

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, 'dist', 'img.js'))) throw new Error('run `npm run build` first (the bench times bin/img)');
  const tools = [
    ...(ONLY.includes('img') ? [imgTool()] : []),
    ...(ONLY.includes('buildkit') && fs.existsSync('/usr/share/docker.io/contrib/dockerd-rootless.sh') ? [buildkitTool()] : []),
    ...(ONLY.includes('buildah') && fs.existsSync('/usr/bin/buildah') ? [buildahTool()] : []),
  ];
  const reg = await startRegistry();
  const damonWas = !flag('keep-damon') && fs.existsSync(DAMON_STATE) ? fs.readFileSync(DAMON_STATE, 'utf8').trim() : null;
  if (damonWas === 'on') fs.writeFileSync(DAMON_STATE, 'off');
  try {
    const bases = await pushBases(reg);
    const cases = writeCases(bases);
    execFileSync('chmod', ['-R', 'a+rX', WORK]);
    const results: Results = {};
    const load: number[] = [];
    for (const c of cases) {
      const r = (results[c.name] = { cold: {}, cached: {}, touched: {} } as Results[string]);
      for (const p of PHASES) for (const t of tools) r[p][t.name] = [];
      for (let i = 0; i < RUNS; i++) {
        for (const t of tools) await t.fresh();
        execFileSync('sync');
        if (SETTLE > 0) execFileSync('sleep', [String(SETTLE)]);
        load.push(os.loadavg()[0]);
        // Tools take turns going first: the first build after a pause runs slower (img's
        // parallel cold alone after 61 s idle: +0.07 s with the page-out off, +0.35 s with it
        // on), so no tool pays that in every round.
        const order = tools.map((_, k) => tools[(k + i) % tools.length]);
        for (const t of order) r.cold[t.name].push(timed(`${c.name} ${t.name} cold`, () => t.build(c)));
        for (const t of order) r.cached[t.name].push(timed(`${c.name} ${t.name} cached`, () => t.build(c)));
        fs.appendFileSync(path.join(c.dir, c.touch), `touched ${Date.now()} ${i}\n`);
        for (const t of order) r.touched[t.name].push(timed(`${c.name} ${t.name} touched`, () => t.build(c)));
      }
      for (const t of tools) {
        const m = (p: Phase) => median(r[p][t.name]).toFixed(2);
        console.error(`${c.name} ${t.name}: cold ${m('cold')}s cached ${m('cached')}s touched ${m('touched')}s`);
      }
    }
    report(cases, tools.map((t) => t.name), results, load);
  } finally {
    if (damonWas === 'on') fs.writeFileSync(DAMON_STATE, 'on');
    for (const t of tools) await t.stop?.().catch((e) => console.error(`stopping ${t.name}: ${(e as Error).message}`));
    await reg.stop();
    // Two GiB per run of state, contexts and images: gone unless asked to keep (--keep).
    if (!flag('keep')) fs.rmSync(WORK, { recursive: true, force: true });
    else console.error(`work directory kept: ${WORK}`);
  }
}

function report(cases: CaseDef[], tools: string[], results: Results, load: number[]): void {
  const has = (t: string) => tools.includes(t);
  const cols = ['img', ...(has('buildkit') ? ['BuildKit'] : []), ...(has('buildah') ? ['buildah'] : [])];
  const ratios = [...(has('buildkit') ? ['img/BuildKit'] : []), ...(has('buildah') ? ['img/buildah'] : [])];
  const lines = [
    `img vs rootless BuildKit (dockerd 20.10 under rootlesskit) vs rootless buildah — medians of ${RUNS} interleaved runs, seconds`,
    `(${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${new Date().toISOString()}, 1-min load average during the runs ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}; img exports ${IMG_COMPRESSION} layers)`,
    '',
    `| case | phase | ${cols.join(' | ')} | ${ratios.join(' | ')} |`,
    `|---|---|${cols.map(() => '---|').join('')}${ratios.map(() => '---|').join('')}`,
  ];
  const summary: Record<string, unknown> = {};
  for (const c of cases) {
    for (const phase of PHASES) {
      const m = (t: string) => (results[c.name][phase][t]?.length ? median(results[c.name][phase][t]) : NaN);
      const vals = ['img', 'buildkit', 'buildah'].filter(has).map((t) => m(t).toFixed(2));
      const rs = ['buildkit', 'buildah'].filter(has).map((t) => (m('img') / m(t)).toFixed(2));
      lines.push(`| ${c.name} | ${phase} | ${vals.join(' | ')} | ${rs.join(' | ')} |`);
      summary[`${c.name}/${phase}`] = { ...Object.fromEntries(tools.map((t) => [t, m(t)])), runs: results[c.name][phase] };
    }
  }
  // A workload that sleeps puts its sleep in every column: the lowest ratio any tool could
  // reach against BuildKit in this run (zero overhead of its own) is sleep ÷ BuildKit's time.
  for (const c of cases) {
    const bk = results[c.name].cold.buildkit;
    if (c.sleeps && has('buildkit') && bk?.length) {
      const t = median(bk);
      lines.push('', `${c.name} cold: the workload sleeps ${c.sleeps.toFixed(1)} s in every tool, so no tool could do better than ${(c.sleeps / t).toFixed(2)}× BuildKit's ${t.toFixed(2)} s here.`);
    }
  }
  const text = lines.join('\n');
  console.log(text);
  if (!SAVE) return;
  const outDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, 'side-by-side.json'),
    JSON.stringify({ date: new Date().toISOString(), runs: RUNS, load, imgCompression: IMG_COMPRESSION, cases: cases.map((c) => ({ name: c.name, describe: c.describe })), results: summary }, null, 2),
  );
  fs.writeFileSync(path.join(outDir, 'side-by-side.md'), text + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
