// Where img runs, and what it costs there: a cold build of examples/hello
// (fresh state dir, base image in a local registry) on this host as the
// unprivileged user and in each pod of the container tests
// (test/containers/pod.ts: runc as root with Docker's defaults, uid 1000),
// with the mapping, backend and /proc that `img doctor` reports there.
// Run as root, after .ci/setup-host (it makes the pod rootfs):
//
//   node --import tsx bench/environments.ts [--runs 3] [--envs host,default,...]
//
// img is this checkout bundled into one file (as the pod tests run it), so
// every environment runs the same code; the time is taken inside the
// environment around `img build` alone (no runuser or runc start-up).
// Prints a table and writes bench/results/environments.json.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBusyboxImage } from '../test/fixtures/images';
import { startRegistry } from '../test/fixtures/registry';
import { rootlessUser, runAsUser, tempDir } from '../test/helpers/rootless';
import { ensureRootfs, imgInPod, podVolume, POD_STATE, runPod, type PodVariant } from '../test/containers/pod';
import { option } from './options';

const REPO = path.resolve(__dirname, '..');
const RUNS = Number(option('runs', '3'));

interface Env {
  name: string;
  describe: string;
  variant?: PodVariant; // a pod; else the host as the unprivileged user
  stateVolume?: boolean; // the pod's state dir on a volume (default true)
}
const ALL_ENVS: Env[] = [
  { name: 'host', describe: 'this host, as the unprivileged user' },
  { name: 'default', describe: 'pod: Docker defaults, file-capability id helpers (img\'s image)', variant: 'default' },
  { name: 'setuid-helpers', describe: 'pod: Docker defaults, Debian\'s setuid id helpers (the report)', variant: 'setuid-helpers' },
  { name: 'no-subids', describe: 'pod: Docker defaults, empty /etc/subuid and /etc/subgid', variant: 'no-subids' },
  { name: 'no-volume', describe: 'pod: Docker defaults, state dir not on a volume', variant: 'default', stateVolume: false },
  { name: 'unmasked-proc', describe: 'pod: Docker defaults + systempaths=unconfined', variant: 'unmasked-proc' },
  { name: 'privileged', describe: 'pod: --privileged', variant: 'privileged' },
];
const ENVS = ALL_ENVS.filter((e) => option('envs', '') === '' || option('envs', '').split(',').includes(e.name));

interface Row {
  env: string;
  describe: string;
  builds: boolean;
  mapping: string;
  backend: string;
  proc: string;
  coldMs: number[];
  cpuMs: number[]; // user + system CPU of the build (img, runc, helpers)
  error?: string;
}

// Children's user + system CPU from bash's `times` output, in ms.
function childCpuMs(text: string): number {
  const [, line] = text.trim().split('\n');
  return line
    .trim()
    .split(/\s+/)
    .map((t) => /^(\d+)m([\d.]+)s$/.exec(t)!)
    .reduce((ms, m) => ms + (Number(m[1]) * 60 + Number(m[2])) * 1000, 0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  ensureRootfs();
  const registry = await startRegistry();
  await registry.seed('library/busybox', 'latest', await makeBusyboxImage());
  const cli = imgInPod();
  const hello = path.join(REPO, 'examples', 'hello');
  // One command line for both kinds of environment: doctor, then the timed build.
  const script = (img: string, state: string, out: string) =>
    [
      `${img} --state ${state} doctor --format json > ${out}/doctor.json 2>/dev/null`,
      // bash's `times`: its second line is the user and system CPU of the finished commands so far.
      `times > ${out}/times.before`,
      `s=$(date +%s%N)`,
      `${img} --state ${state} build --progress=plain --build-arg BASE=${registry.host}/library/busybox:latest -t ${registry.host}/hello:bench ${'$CONTEXT'} > ${out}/build.log 2>&1`,
      `echo $? > ${out}/build.code`,
      `echo $(( ($(date +%s%N) - s) / 1000000 )) > ${out}/build.ms`,
      `times > ${out}/times.after`,
    ].join('\n');
  const rows: Row[] = [];
  for (const env of ENVS) {
    const row: Row = { env: env.name, describe: env.describe, builds: true, mapping: '', backend: '', proc: '', coldMs: [], cpuMs: [] };
    for (let run = 0; run < RUNS; run++) {
      const out = env.variant ? podVolume('img-bench-env-out-') : tempDir('img-bench-env-out-');
      let state = '';
      try {
        if (!env.variant) {
          state = tempDir('img-bench-env-');
          const res = await runAsUser(['bash', '-c', script(`${process.execPath} ${path.join(cliDir(cli), 'img.cjs')}`, state, out)], {
            env: { IMG_ADDON_PATH: path.join(cliDir(cli), 'img_addon.node'), CONTEXT: hello },
          });
          if (res.code !== 0) throw new Error(res.stderr);
        } else {
          state = podVolume('img-bench-env-state-');
          const res = await runPod({
            variant: env.variant,
            argv: ['bash', '-c', script(cli.argv.join(' '), POD_STATE, '/home/user/out')],
            env: { ...cli.env, CONTEXT: '/home/user/src' },
            volumes: [
              ...cli.volumes,
              ...(env.stateVolume === false ? [] : [{ host: state, container: POD_STATE }]),
              { host: out, container: '/home/user/out' },
              { host: hello, container: '/home/user/src', readonly: true },
            ],
          });
          if (res.code !== 0) throw new Error(res.stderr);
        }
        const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8').trim();
        const verdict = (JSON.parse(read('doctor.json')) as { verdict: { mapping: string; backend: string; proc: string } }).verdict;
        Object.assign(row, { mapping: verdict.mapping, backend: verdict.backend, proc: verdict.proc });
        if (read('build.code') !== '0') {
          row.builds = false;
          // The failing step's own complaint (its last output line) says more than the summary.
          const log = read('build.log').split('\n');
          const stepSaid = log.filter((l) => /^#\d+ [\d.]+ /.test(l)).pop()?.replace(/^#\d+ [\d.]+ /, '');
          row.error = (stepSaid ?? log.filter((l) => l.startsWith('Error')).pop() ?? 'failed').slice(0, 100);
          break;
        }
        row.coldMs.push(Number(read('build.ms')));
        row.cpuMs.push(Math.round(childCpuMs(read('times.after')) - childCpuMs(read('times.before'))));
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
        if (state) fs.rmSync(state, { recursive: true, force: true });
      }
    }
    rows.push(row);
    process.stderr.write(`${env.name}: ${row.builds ? `${row.coldMs.join(', ')} ms (cpu ${row.cpuMs.join(', ')} ms)` : `fails: ${row.error}`}\n`);
  }
  await registry.stop();

  const lines = [
    `| environment | builds? | mapping | backend | /proc | cold examples/hello, wall (CPU), median of ${RUNS} |`,
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.describe} | ${r.builds ? 'yes' : `no: ${r.error ?? ''}`} | ${r.mapping} | ${r.backend} | ${r.proc} | ${r.builds ? `${(median(r.coldMs) / 1000).toFixed(2)} s (${(median(r.cpuMs) / 1000).toFixed(2)} s)` : '—'} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(REPO, 'bench', 'results', 'environments.json'),
    `${JSON.stringify({ date: new Date().toISOString(), host: `${os.release()} ${os.cpus().length} cores`, runs: RUNS, user: rootlessUser()?.name, rows }, null, 2)}\n`,
  );
}

// The host directory the pod sees as /opt/img-cli (the bundled CLI and its addon).
function cliDir(cli: ReturnType<typeof imgInPod>): string {
  return cli.volumes.find((v) => v.container === '/opt/img-cli')!.host;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

