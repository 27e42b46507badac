// Whole-build benchmark: img vs BuildKit (dockerd's, as `DOCKER_BUILDKIT=1 docker build`)
// vs `buildah bud --layers`, same machine, same run, same base images from one local
// registry. Run as root (it starts dockerd's builds and runs img as an unprivileged user):
//
//   npm run build && node --import tsx bench/side-by-side.ts [--runs 3] [--cases tiny,parallel,context,debian]
//                                                            [--img-user imgtest] [--tools img,buildkit,buildah]
//
// Phases per case: cold (empty state: no cache, base image not present), cached (same
// build again, nothing changed), touched (one context file changed). Prints medians and
// img/BuildKit ratios and writes bench/results/side-by-side.json.
//
// Exporters: img stores the image (`-t`, gzip layers into its content store). Debian's
// docker.io (20.10) runs BuildKit with the docker driver, which has no `oci` exporter, so
// BuildKit stores into dockerd's image store (`-t`, uncompressed layers): img does the
// extra compression work in this comparison.
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { writeOciLayout } from '../test/archive/oci';
import { makeBusyboxImage } from '../test/fixtures/images';
import { startRegistry, type Registry } from '../test/fixtures/registry';

const REPO = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(opt('runs', '3'));
const CASES = opt('cases', 'tiny,parallel,context,debian').split(',');
const IMG_USER = opt('img-user', 'imgtest');
const WITH_BUILDKIT = !args.includes('--no-buildkit') && fs.existsSync('/usr/bin/docker');
const WITH_BUILDAH = !args.includes('--no-buildah') && fs.existsSync('/usr/bin/buildah');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-side-by-side-'));
const CACHE = '/var/tmp/img-bench-cache';
fs.chmodSync(WORK, 0o755);

type Tool = 'img' | 'buildkit' | 'buildah';
type Phase = 'cold' | 'cached' | 'touched';
interface CaseDef {
  name: string;
  describe: string;
  dir: string;
  touch: string; // context file changed in the touched phase
}

function sh(cmd: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; quiet?: boolean } = {}): void {
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
}

// A failed build is reported and counted as NaN, so one tool's failure does not
// end the whole comparison.
function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  try {
    fn();
  } catch (err) {
    console.error(`  run failed: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
    return NaN;
  }
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function median(all: number[]): number {
  const xs = all.filter((x) => !Number.isNaN(x));
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
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
  const mk = (name: string, describe: string, dockerfile: string, files: Record<string, string | Buffer>, touch: string) => {
    const dir = path.join(WORK, 'cases', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [f, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), data);
    }
    out.push({ name, describe, dir, touch });
  };
  const bb = bases.busybox;
  if (CASES.includes('tiny')) {
    mk('tiny', 'RUN + COPY on busybox', `FROM ${bb}\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n`, { 'app.txt': 'v0\n' }, 'app.txt');
  }
  if (CASES.includes('parallel')) {
    const stages = [1, 2, 3, 4].map((i) => `FROM ${bb} AS s${i}\nRUN sleep 2 && echo ${i} > /out${i}\n`).join('\n');
    const copies = [1, 2, 3, 4].map((i) => `COPY --from=s${i} /out${i} /out${i}`).join('\n');
    mk('parallel', 'four independent 2 s stages copied into a final stage', `${stages}\nFROM ${bb}\n${copies}\nCOPY stamp.txt /stamp.txt\n`, { 'stamp.txt': '0\n' }, 'stamp.txt');
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

// img runs as the unprivileged user: its state and runtime dirs live in a dir that user owns.
const imgHome = path.join(WORK, 'img');
const imgState = path.join(imgHome, 'state');
const imgRuntime = path.join(imgHome, 'run');

function imgBuild(c: CaseDef): void {
  const main = path.join(REPO, 'dist', 'lib', 'cli', 'main.js');
  const env = { HOME: `/home/${IMG_USER}`, XDG_RUNTIME_DIR: imgRuntime };
  const argv = [process.execPath, main, '--state', imgState, 'build', '--no-console', '-t', `bench/${c.name}:latest`, c.dir];
  if (process.getuid?.() === 0) sh('runuser', ['-u', IMG_USER, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]);
  else sh(argv[0], argv.slice(1));
}

function imgReset(): void {
  fs.rmSync(imgState, { recursive: true, force: true });
  if (fs.existsSync(imgState)) throw new Error(`could not remove ${imgState}`);
}

const dockerEnv = { DOCKER_BUILDKIT: '1' };
function buildkitBuild(c: CaseDef): void {
  sh('/usr/bin/docker', ['build', '--network=none', '-q', '-t', `bench/${c.name}:latest`, c.dir], { env: dockerEnv });
}
function buildkitReset(): void {
  spawnSync('/usr/bin/docker', ['image', 'rm', '-f', ...listDockerImages()], { stdio: 'ignore' });
  sh('/usr/bin/docker', ['builder', 'prune', '-af'], { quiet: true });
}
function listDockerImages(): string[] {
  return execFileSync('/usr/bin/docker', ['image', 'ls', '-q']).toString().split('\n').filter(Boolean);
}

function buildahBuild(c: CaseDef): void {
  sh('buildah', ['bud', '--layers', '--runtime', 'runc', '--network', 'none', '--tls-verify=false', '-q', '-t', `bench/${c.name}:latest`, c.dir], { quiet: true });
}
function buildahReset(): void {
  spawnSync('buildah', ['rm', '--all'], { stdio: 'ignore' });
  spawnSync('buildah', ['rmi', '--all', '--force'], { stdio: 'ignore' });
}

const ONLY = opt('tools', 'img,buildkit,buildah').split(',');
const TOOLS: { name: Tool; build: (c: CaseDef) => void; reset: () => void }[] = [
  { name: 'img' as Tool, build: imgBuild, reset: imgReset },
  ...(WITH_BUILDKIT ? [{ name: 'buildkit' as Tool, build: buildkitBuild, reset: buildkitReset }] : []),
  ...(WITH_BUILDAH ? [{ name: 'buildah' as Tool, build: buildahBuild, reset: buildahReset }] : []),
].filter((t) => ONLY.includes(t.name));

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, 'dist', 'lib', 'cli', 'main.js'))) sh('npx', ['tsc', '-p', path.join(REPO, 'tsconfig.json')]);
  fs.mkdirSync(imgRuntime, { recursive: true });
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', IMG_USER, imgHome]);
  const reg = await startRegistry();
  try {
    const bases = await pushBases(reg);
    const cases = writeCases(bases);
    execFileSync('chmod', ['-R', 'a+rX', WORK]);
    const results: Record<string, Record<Phase, Record<string, number[]>>> = {};
    for (const c of cases) {
      results[c.name] = { cold: {}, cached: {}, touched: {} };
      for (const tool of TOOLS) {
        const r = results[c.name];
        r.cold[tool.name] = [];
        r.cached[tool.name] = [];
        r.touched[tool.name] = [];
        for (let i = 0; i < RUNS; i++) {
          tool.reset();
          r.cold[tool.name].push(timed(() => tool.build(c)));
        }
        for (let i = 0; i < RUNS; i++) r.cached[tool.name].push(timed(() => tool.build(c)));
        for (let i = 0; i < RUNS; i++) {
          fs.appendFileSync(path.join(c.dir, c.touch), `touched ${Date.now()} ${i}\n`);
          r.touched[tool.name].push(timed(() => tool.build(c)));
        }
        console.error(`${c.name} ${tool.name}: cold ${median(r.cold[tool.name]).toFixed(2)}s cached ${median(r.cached[tool.name]).toFixed(2)}s touched ${median(r.touched[tool.name]).toFixed(2)}s`);
      }
    }
    report(cases, results);
  } finally {
    await reg.stop();
  }
}

function report(cases: CaseDef[], results: Record<string, Record<Phase, Record<string, number[]>>>): void {
  const lines = [
    `img vs BuildKit${WITH_BUILDAH ? ' vs buildah' : ''} — medians of ${RUNS} runs, seconds (${os.cpus().length} cores, ${new Date().toISOString()})`,
    '',
    `| case | phase | img | BuildKit | ${WITH_BUILDAH ? 'buildah | ' : ''}img/BuildKit |`,
    `|---|---|---|---|${WITH_BUILDAH ? '---|' : ''}---|`,
  ];
  const summary: Record<string, unknown> = {};
  for (const c of cases) {
    for (const phase of ['cold', 'cached', 'touched'] as Phase[]) {
      const m = (t: Tool) => (results[c.name][phase][t]?.length ? median(results[c.name][phase][t]) : NaN);
      const ratio = m('img') / m('buildkit');
      lines.push(
        `| ${c.name} | ${phase} | ${m('img').toFixed(2)} | ${m('buildkit').toFixed(2)} | ${WITH_BUILDAH ? `${m('buildah').toFixed(2)} | ` : ''}${ratio.toFixed(2)} |`,
      );
      summary[`${c.name}/${phase}`] = { img: m('img'), buildkit: m('buildkit'), buildah: m('buildah'), ratio, runs: results[c.name][phase] };
    }
  }
  const text = lines.join('\n');
  console.log(text);
  const outDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'side-by-side.json'), JSON.stringify({ date: new Date().toISOString(), runs: RUNS, cases: cases.map((c) => ({ name: c.name, describe: c.describe })), results: summary }, null, 2));
  fs.writeFileSync(path.join(outDir, 'side-by-side.md'), text + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
