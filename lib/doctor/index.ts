// `img doctor`: what this environment lets img do, and what each missing
// piece costs. Host facts are read here; the trials a build depends on run
// where a build runs — an unprivileged caller re-runs `img doctor` inside the
// user namespace img enters (the same entry a build takes, so the mapping it
// gets is the one a build would get), which writes its results to the file
// named by IMG_DOCTOR_TRIALS. Host reads, the id-map trial and the namespaced
// trials run in parallel.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IdMapEntry } from '../exec/idmap';
import { spawnInUserNamespace } from '../exec/userns';
import { launcherPath, loadAddon, selfArgv } from '../host/index';
import { HostError } from '../util/errors';
import { writeJsonAtomic } from '../util/fsutil';
import {
  addonCheck,
  binfmtCheck,
  cgroupCheck,
  credentialsCheck,
  findHelpers,
  helpersCheck,
  kernelCheck,
  mappingFix,
  readCallerSubIds,
  stateCheck,
  SINGLE_ID_COST,
  subidsCheck,
  tryIdMapping,
  usernsCheck,
  type Helper,
  type MappingTrial,
  type SubIds,
} from './host';
import type { Check, DoctorReport, Verdict } from './report';
import { runTrials, type Trials } from './trials';

export { formatJson, formatTable } from './report';
export type { Check, DoctorReport, Status, Verdict } from './report';

export const TRIALS_ENV = 'IMG_DOCTOR_TRIALS';

// The namespaced half: run the trials and hand them to the parent.
export async function writeTrials(file: string, stateDir: string): Promise<void> {
  await writeJsonAtomic(file, await runTrials(stateDir));
}

async function trialsInNamespace(stateDir: string): Promise<Trials> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-doctor-'));
  const file = path.join(dir, 'trials.json');
  try {
    const pid = await spawnInUserNamespace(selfArgv(), { env: { ...process.env, [TRIALS_ENV]: file } });
    const code = await loadAddon().waitpid(pid);
    if (!fs.existsSync(file)) throw new HostError(`the trials in the user namespace did not finish (exit ${code})`);
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Trials;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function formatMap(map: IdMapEntry[]): string {
  return map.map((e) => (e.count === 1 ? `${e.inside}→${e.outside}` : `${e.inside}-${e.inside + e.count - 1}→${e.outside}-${e.outside + e.count - 1}`)).join(', ');
}

function mappingCheck(trials: Trials | Error, trial: MappingTrial | undefined, ids: SubIds, helpers: Helper[]): Check {
  const title = 'id mapping';
  const refused = trial?.error ? `${trial.error.helper} refused: ${trial.error.message}` : undefined;
  const fix = trial?.error ? mappingFix(helpers, trial.error.helper) : !ids.uid.length || !ids.gid.length ? 'add subordinate ranges (see above)' : undefined;
  if (trials instanceof Error)
    return { id: 'mapping', title, status: 'fail', found: refused ?? trials.message, cost: 'img cannot enter a user namespace: no build works', fix: fix ?? (trials instanceof HostError ? trials.hint : undefined) };
  const full = trials.uidMap.length > 1 && trials.gidMap.length > 1;
  const found = `${full ? 'subordinate ranges' : 'single id'}: uid ${formatMap(trials.uidMap)}; gid ${formatMap(trials.gidMap)}`;
  if (full) return { id: 'mapping', title, status: 'ok', found };
  return { id: 'mapping', title, status: 'warn', found: refused ? `${found} (${refused})` : found, cost: SINGLE_ID_COST, fix };
}

// Rows from the trials; `stateFs` (the state dir's filesystem type) picks the overlayfs fix.
function trialChecks(t: Trials, stateFs: string | undefined, kernel: Check): Check[] {
  const out: Check[] = [];
  out.push(
    t.proc === null
      ? { id: 'proc', title: '/proc', status: 'ok', found: 'fresh /proc in a PID namespace for each RUN step' }
      : {
          id: 'proc',
          title: '/proc',
          status: 'warn',
          found: `host /proc: a fresh one cannot be mounted (${t.proc})`,
          cost: 'RUN steps share img\'s PID namespace: they see and can signal other processes (img kills their leftovers itself)',
          fix: 'unmask /proc: docker run --security-opt systempaths=unconfined; Kubernetes: securityContext.procMount: Unmasked',
        },
  );
  const onOverlayFs = stateFs === 'overlayfs' || stateFs === 'tmpfs' || stateFs === 'fuse' ? stateFs : undefined;
  out.push(
    t.overlayfs === null
      ? { id: 'overlayfs', title: 'overlayfs', status: 'ok', found: 'mounts on the state dir\'s filesystem (userxattr in a user namespace)' }
      : {
          id: 'overlayfs',
          title: 'overlayfs',
          status: 'warn',
          found: `cannot mount: ${t.overlayfs}`,
          cost: 'fuse-overlayfs or native backend: slower steps',
          fix: onOverlayFs
            ? `the state dir is on ${onOverlayFs}: put it on a volume (docker run -v img-state:/home/user/.local/share/img; Kubernetes: an emptyDir or PVC there)`
            : kernel.status !== 'ok'
              ? kernel.fix
              : 'a kernel that allows overlayfs in user namespaces (Linux ≥ 5.11)',
        },
  );
  out.push(
    t.fuseOverlayfs === null
      ? { id: 'fuse', title: 'fuse-overlayfs', status: 'ok', found: '/dev/fuse and fuse-overlayfs work' }
      : t.overlayfs === null
        ? { id: 'fuse', title: 'fuse-overlayfs', status: 'info', found: `unusable (${t.fuseOverlayfs}); not needed: overlayfs works` }
        : {
            id: 'fuse',
            title: 'fuse-overlayfs',
            status: 'warn',
            found: `unusable: ${t.fuseOverlayfs}`,
            cost: 'native backend: every step copies its parent snapshot (slower, more disk)',
            fix: 'install fuse-overlayfs and give the container /dev/fuse (docker run --device /dev/fuse)',
          },
  );
  const backend = t.overlayfs === null ? 'overlayfs' : t.fuseOverlayfs === null ? 'fuse-overlayfs' : 'native';
  out.push(
    backend === 'overlayfs'
      ? { id: 'backend', title: 'backend (auto)', status: 'ok', found: 'overlayfs' }
      : {
          id: 'backend',
          title: 'backend (auto)',
          status: 'warn',
          found: backend,
          cost: backend === 'native' ? 'copies on every step' : 'every file access of a step goes through a FUSE daemon',
          fix: 'make overlayfs work (see above)',
        },
  );
  const warnings = t.runcWarnings.length ? `; runc warns "${t.runcWarnings[0]}" (kept out of build output, shown by --debug)` : '';
  out.push(
    t.runc === null
      ? { id: 'runc', title: 'runc', status: 'ok', found: `${t.runcVersion ?? 'unknown version'}: a trial container ran${warnings}` }
      : {
          id: 'runc',
          title: 'runc',
          status: 'fail',
          found: `${t.runcVersion ? `${t.runcVersion}: ` : ''}${t.runc}`,
          cost: 'RUN steps cannot run',
          fix: 'install runc (apt-get install runc); in a container, run it with seccomp and AppArmor unconfined (docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined)',
        },
  );
  return out;
}

// How a build gets into its namespace: img-launch before Node starts, or
// (launcher missing) img re-executing itself; and the record of this entry.
function entryCheck(t: Trials | Error, root: boolean): Check {
  const title = 'namespace entry';
  if (root) return { id: 'entry', title, status: 'info', found: 'none needed: running as root' };
  const here = t instanceof Error ? '' : `; here: mapping ${t.entry.mapping} (${t.entry.mappingReason})`;
  const launcher = launcherPath();
  if (launcher) return { id: 'entry', title, status: 'ok', found: `${launcher} maps the namespace before Node starts${here}` };
  return {
    id: 'entry',
    title,
    status: 'warn',
    found: `img-launch is missing: img re-executes itself in the namespace${here}`,
    cost: 'one more Node start for each build, unpack, du, prune, rm',
    fix: 'npm run build:addon (builds img-launch beside the addon)',
  };
}

function notTried(why: string): Check[] {
  const rows: [string, string][] = [
    ['proc', '/proc'],
    ['overlayfs', 'overlayfs'],
    ['fuse', 'fuse-overlayfs'],
    ['runc', 'runc'],
  ];
  return rows.map(([id, title]) => ({ id, title, status: 'info', found: `not tried: ${why}` }));
}

export async function doctor(stateDir: string): Promise<DoctorReport> {
  const addon = addonCheck();
  if (addon.status === 'fail') return { checks: [addon, stateNotChecked(stateDir)], verdict: { builds: false, mapping: 'none', backend: 'none', proc: 'none' } };
  const probe = loadAddon().probe();
  const root = probe.uid === 0;
  const ids = await readCallerSubIds();
  const helpers = findHelpers();
  const canMap = !root && probe.userns && ids.uid.length > 0 && ids.gid.length > 0 && helpers.every((h) => h.path);
  // The trials work in the state dir (overlayfs support depends on its filesystem).
  const { check: state, fs: stateFs } = await stateCheck(stateDir);
  const [trials, trial] = await Promise.all([
    state.status === 'fail'
      ? Promise.resolve(new HostError('the state dir is not writable'))
      : !root && !probe.userns
        ? Promise.resolve(new HostError('no user namespace'))
        : (root ? runTrials(stateDir) : trialsInNamespace(stateDir)).catch((err: Error) => err),
    canMap ? tryIdMapping(ids, helpers) : Promise.resolve(undefined),
  ]);
  const kernel = kernelCheck(probe);
  const checks: Check[] = [kernel, addon, usernsCheck(probe), subidsCheck(ids, root), helpersCheck(helpers, root)];
  const stateless = state.status === 'fail';
  if (root) checks.push({ id: 'mapping', title: 'id mapping', status: 'info', found: 'none: running as root' });
  else if (probe.userns && !stateless) checks.push(mappingCheck(trials, trial, ids, helpers));
  if (probe.userns || root) checks.push(entryCheck(trials, root));
  if (trials instanceof Error) checks.push(...notTried(stateless ? 'the state dir is not writable' : probe.userns ? 'img could not enter a user namespace' : 'no user namespace'));
  else checks.push(...trialChecks(trials, stateFs, kernel));
  checks.push(cgroupCheck(), binfmtCheck(), state, credentialsCheck());
  const verdict: Verdict = {
    builds: !checks.some((c) => c.status === 'fail'),
    mapping: root ? 'none (root)' : trials instanceof Error ? 'none' : trials.uidMap.length > 1 ? 'subordinate ranges' : 'single id',
    backend: checks.find((c) => c.id === 'backend')?.found ?? 'none',
    proc: trials instanceof Error ? 'none' : trials.proc === null ? 'fresh' : 'host',
  };
  return { checks, verdict };
}

function stateNotChecked(stateDir: string): Check {
  return { id: 'state', title: 'state dir', status: 'info', found: `${stateDir}: not checked without the addon` };
}
