// Runs a RunOptions through runc: bundle (config.json, runc's log) in
// <state>/tmp/exec/<id>, the generated resolv.conf/hosts shared by the process's
// containers (sharedFile), `runc run` with piped stdio, and cleanup that always
// happens (runc delete --force, bundle removal, and on abort or SIGINT/SIGTERM
// `runc kill KILL` first).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerCleanup } from '../host/cleanup';
import { spawnLight, type LightChild } from '../host/index';
import { idMapped } from '../host/mapped-ids';
import { AbortError, DiskFullError, HostError, hostErrorClass, isErrno, UsageError } from '../util/errors';
import { diskFullError, diskSpace } from '../util/fsutil';
import { debug, warn } from '../util/log';
import { currentEntry, noteProc } from './entry';
import { missingMountPoints, removeMountPoints, resolveInRoot, type CreatedMountPoints } from './mounts';
import { resolveUser } from './passwd';
import type { RunOptions } from './run';
import { buildSpec, hostsFile, nofileLimit, resolvConf, specJson, specMounts, type OciMount } from './spec';

// runc's state dir: $XDG_RUNTIME_DIR/img/runc, else /tmp/img-runc-<host uid>/img/runc.
export function runcRoot(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && isWritableDir(xdg)) return path.join(xdg, 'img', 'runc');
  const uid = process.env.IMG_HOST_UID ?? String(process.getuid?.() ?? 0);
  return path.join('/tmp', `img-runc-${uid}`, 'img', 'runc');
}

function isWritableDir(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

let runcPath: string | null | undefined;
export function findRunc(): string {
  if (runcPath === undefined) {
    runcPath = null;
    const candidates = [process.env.IMG_RUNC, ...(process.env.PATH ?? '').split(':').map((d) => d && path.join(d, 'runc')), '/usr/sbin/runc', '/usr/bin/runc'];
    for (const c of candidates) {
      if (!c) continue;
      try {
        fs.accessSync(c, fs.constants.X_OK);
        runcPath = c;
        break;
      } catch {
        /* next */
      }
    }
  }
  if (!runcPath) {
    throw new HostError('runc was not found in PATH; RUN steps need it', {
      hint: 'install runc (Debian/Ubuntu: apt-get install runc) or set IMG_RUNC to its path',
    });
  }
  return runcPath;
}

// Whether this host lets us mount a fresh /proc (needs a pid namespace we own
// and a /proc that is not partly covered, which some container hosts have).
// Tried with util-linux unshare; resolves to null when it works, else why not.
export function freshProcTrial(): string | null {
  if (process.env.IMG_NO_PROC_MOUNT === '1') return 'IMG_NO_PROC_MOUNT=1 is set'; // forced (tests, or hosts where the trial is wrong)
  const r = spawnSync('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8', timeout: 10000 });
  if (r.error && isErrno(r.error, 'ENOENT')) return null; // no unshare(1): let runc try
  if (r.status === 0) return null;
  return (r.stderr ?? '').trim().split('\n').pop() || `unshare exited with ${r.status ?? r.signal}`;
}

// The verdict once per process, with the warning a build shows: img-launch's
// probe on the way in (./entry.ts) when it made one, else the trial; either
// way it is in the entry record for --debug and img version.
let freshProcOk: boolean | undefined;
export function canMountProc(): boolean {
  if (freshProcOk !== undefined) return freshProcOk;
  const known = currentEntry();
  let whyNot: string | null;
  if (known.proc !== 'unknown' && process.env.IMG_NO_PROC_MOUNT !== '1') whyNot = known.proc === 'fresh' ? null : known.procReason;
  else {
    whyNot = freshProcTrial();
    noteProc(whyNot === null ? 'fresh' : 'host', whyNot ?? 'a fresh /proc mounts in a new PID namespace here');
  }
  freshProcOk = whyNot === null;
  if (whyNot !== null) {
    debug(`fresh /proc: ${whyNot}`);
    warn(
      'this host does not allow mounting a fresh /proc in a user namespace (e.g. img running inside a container with a masked /proc): ' +
        'RUN steps run without a PID namespace and see the host /proc. Unmask /proc (docker run --security-opt systempaths=unconfined) to fix it.',
    );
  }
  return freshProcOk;
}

// runc's own messages (logrus) go to a JSON-lines file in the bundle, so the
// step's stderr carries only the container process's output. Rootless runc
// warns on every step in many containers ("cannot toggle freezer: cgroups not
// configured"): noise for a build log, kept for --debug. A fatal error is
// also printed on stderr by runc itself, so a step that cannot start still says why.
export interface RuntimeLogEntry {
  level: string;
  msg: string;
}

export function readRuntimeLog(file: string): RuntimeLogEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const entries: RuntimeLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as { level?: unknown; msg?: unknown };
      entries.push({ level: String(e.level ?? 'info'), msg: String(e.msg ?? '') });
    } catch {
      entries.push({ level: 'info', msg: line }); // a line runc wrote without logrus
    }
  }
  return entries;
}

function runc(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(findRunc(), ['--root', runcRoot(), ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').trim() };
}

// Without a pid namespace nothing takes a container's leftover processes
// down with its init, so find them: every descendant of the `runc run`
// process (runc is their subreaper), and every process whose root directory
// is the rootfs (compared by device and inode: /proc/<pid>/root names a path
// in the container's own mount namespace, not ours).
function killLeftovers(runcPid: number | undefined, rootfs: string): number {
  let rootId = '';
  try {
    const st = fs.statSync(rootfs);
    rootId = `${st.dev}:${st.ino}`;
  } catch {
    /* gone: rely on the process tree */
  }
  const parents = new Map<number, number>();
  const victims = new Set<number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      parents.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      continue;
    }
    if (rootId) {
      try {
        const st = fs.statSync(`/proc/${pid}/root/`);
        if (`${st.dev}:${st.ino}` === rootId) victims.add(pid);
      } catch {
        /* not ours to inspect */
      }
    }
  }
  if (runcPid) {
    for (const pid of parents.keys()) {
      for (let p = parents.get(pid), hops = 0; p && hops < 64; p = parents.get(p), hops++) {
        if (p === runcPid) {
          victims.add(pid);
          break;
        }
      }
    }
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  return victims.size;
}

// Whether the container's init (pid from runc's --pid-file) has exited.
function initGone(pidFile: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return false; // not started yet
  }
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

// runc's state dir, made once per process.
const madeRoots = new Map<string, Promise<unknown>>();
function makeRuncRoot(): Promise<unknown> {
  const root = runcRoot();
  let made = madeRoots.get(root);
  if (!made) {
    made = fsp.mkdir(root, { recursive: true, mode: 0o700 });
    made.catch(() => madeRoots.delete(root));
    madeRoots.set(root, made);
  }
  return made;
}

// resolv.conf and hosts are the same for most steps of a build (one hostname, one
// network): each distinct text is written once per process into a directory of its
// own, bind-mounted read-only into every container that needs it, and removed when
// the process exits. A new file is the slowest thing a step's setup does on a busy
// ext4 (two per step, and two removals after it).
const sharedDirs = new Map<string, Promise<string>>(); // state dir → the process's dir
const sharedFiles = new Map<string, Promise<string>>(); // state dir, name, text → file

function sharedDir(stateDir: string): Promise<string> {
  let dir = sharedDirs.get(stateDir);
  if (!dir) {
    const made = path.join(stateDir, 'tmp', 'exec', `img-files-${randomBytes(6).toString('hex')}`);
    dir = fsp.mkdir(made, { recursive: true, mode: 0o711 }).then(() => {
      process.once('exit', () => fs.rmSync(made, { recursive: true, force: true }));
      return made;
    });
    dir.catch(() => sharedDirs.delete(stateDir));
    sharedDirs.set(stateDir, dir);
  }
  return dir;
}

export async function sharedFile(stateDir: string, name: string, text: string): Promise<string> {
  const key = `${stateDir}\0${name}\0${text}`;
  let file = sharedFiles.get(key);
  // A prune of old leftovers during a build over an hour long may have taken it.
  if (file && !fs.existsSync(await file)) {
    sharedFiles.delete(key);
    sharedDirs.delete(stateDir);
    file = undefined;
  }
  if (!file) {
    file = sharedDir(stateDir).then(async (dir) => {
      const f = path.join(dir, `${name}-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
      await fsp.writeFile(f, text, { mode: 0o644 });
      return f;
    });
    file.catch(() => sharedFiles.delete(key));
    sharedFiles.set(key, file);
  }
  return file;
}

export function containerId(): string {
  return `img-${randomBytes(8).toString('hex')}`;
}

// mkdir -p of `dir` (0755), the directories it made then owned by uid:gid (idtools'
// MkdirAllAndChown: the ones that were there keep their owner).
async function makeOwnedDirs(dir: string, uid: number, gid: number): Promise<void> {
  const first = await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined || (uid === 0 && gid === 0)) return;
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) {
    await fsp.chown(d, uid, gid).catch((e) => debug(`working directory ${d} for ${uid}:${gid}: ${(e as Error).message}`));
    if (d === first || d === path.dirname(d)) break;
  }
}

export async function runInBundle(opts: RunOptions): Promise<{ exitCode: number; runtimeLog: RuntimeLogEntry[] }> {
  if (opts.args.length === 0) {
    throw new UsageError('no command to run', { hint: 'give RUN a command (or set an ENTRYPOINT/CMD)' });
  }
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const id = containerId();
  const bundle = path.join(opts.stateDir, 'tmp', 'exec', id);
  const freshProc = opts.freshProc ?? canMountProc();
  const hostname = opts.hostname || randomBytes(6).toString('hex');
  const cleanupsDone: (() => void)[] = [];
  // Ctrl-C or SIGTERM during the step: the bundle goes with the container (the
  // container's undo, registered later, runs first).
  const unregisterBundle = registerCleanup(`bundle ${bundle}`, () => fs.rmSync(bundle, { recursive: true, force: true }));
  let created: CreatedMountPoints = { paths: [], parents: new Map() };
  // What a step waits for before runc starts is a row of small file
  // operations, each a round trip through libuv's pool: the independent ones
  // go at once (four stages starting together waited ~40 ms each in a row).
  const cwd = opts.cwd || '/';
  const userMounts: OciMount[] = opts.mounts.map((m) =>
    m.type === 'bind'
      ? { destination: m.target, type: 'bind', source: m.source, options: ['rbind', m.readonly ? 'ro' : 'rw'] }
      : {
          destination: m.target,
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])],
        },
  );
  const mountsFor = { freshProc, network: opts.network, ttyGidMapped: idMapped('gid', 5), userMounts, shmSize: opts.shmSize, insecure: opts.insecure };
  // (The destinations do not depend on the resolv.conf and hosts files' paths.)
  const destinations = specMounts({ ...mountsFor, resolvConf: '', hosts: '' }).map((m) => m.destination);
  try {
    // The working directory must exist in the rootfs (docker creates it); the mount
    // points are looked for after it is made when it shares a path with one.
    // As BuildKit's executor, the directories it makes belong to the step's user.
    const userFound = resolveUser(opts.rootfs, opts.user || 'root').then((u) => {
      // runc would fail with "unable to setup user: invalid argument"; say which ids and why.
      if (!idMapped('uid', u.uid) || !idMapped('gid', u.gid)) {
        throw new UsageError(`cannot run as user ${opts.user} (uid ${u.uid}, gid ${u.gid}): this user namespace does not map those ids`, {
          hint: 'img maps only ids it has subordinate ranges for (img doctor shows them): add ranges to /etc/subuid and /etc/subgid, or run the step as a mapped user (USER root)',
        });
      }
      return u;
    });
    const cwdMade = Promise.all([resolveInRoot(opts.rootfs, cwd), userFound]).then(([dir, u]) => makeOwnedDirs(dir, u.uid, u.gid));
    const related = (d: string) => cwd === d || cwd.startsWith(d.replace(/\/*$/, '/')) || d.startsWith(cwd.replace(/\/*$/, '/'));
    // A full disk while writing the bundle (config.json, resolv.conf, hosts) names the
    // state dir's filesystem and what to do, as a blob's or a snapshot's does.
    const named = async (err: unknown): Promise<never> => {
      if (hostErrorClass(err) !== DiskFullError) throw err;
      throw diskFullError(bundle, 'the bundle of this step', await diskSpace(opts.stateDir), err);
    };
    const [user, resolv, hosts, points] = await Promise.all([
      userFound,
      sharedFile(opts.stateDir, 'resolv.conf', resolvConf(opts.network)),
      sharedFile(opts.stateDir, 'hosts', hostsFile(hostname, opts.extraHosts)),
      (cwd !== '/' && destinations.some(related) ? cwdMade : Promise.resolve()).then(() => missingMountPoints(opts.rootfs, destinations)),
      fsp.mkdir(bundle, { recursive: true, mode: 0o711 }),
      makeRuncRoot(),
      cwdMade,
    ]).catch(named);
    created = points;
    const env = [...opts.env];
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
    const spec = buildSpec({
      ...mountsFor,
      rootfs: path.resolve(opts.rootfs),
      args: opts.args,
      env,
      cwd,
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      hostname,
      resolvConf: resolv,
      hosts,
      nofile: nofileLimit(),
      rlimits: opts.rlimits,
    });
    await fsp.writeFile(path.join(bundle, 'config.json'), specJson(spec)).catch(named);

    let runcPid: number | undefined;
    // Only a container without a pid namespace needs its init's pid (initGone).
    const pidFile = path.join(bundle, 'init.pid');
    const keepLog = opts.runtimeLog ?? true;
    const logFile = keepLog ? path.join(bundle, 'runc.log') : '/dev/null';
    const kill = () => {
      runc(['kill', id, 'KILL']);
      if (!freshProc) killLeftovers(runcPid, opts.rootfs);
    };
    const unregister = registerCleanup(`container ${id}`, () => {
      kill();
      runc(['delete', '--force', id]);
    });
    cleanupsDone.push(unregister);

    debug(`runc run ${id}: ${JSON.stringify(opts.args)} as ${user.uid}:${user.gid} in ${opts.rootfs}`);
    const exitCode = await new Promise<number>((resolve, reject) => {
      const child = startRunc(['--root', runcRoot(), '--log', logFile, '--log-format', 'json', 'run', ...(freshProc ? [] : ['--pid-file', pidFile]), '--bundle', bundle, id]);
      runcPid = child.pid;
      // Without a pid namespace, runc (a subreaper) waits for orphans too:
      // once the init process is gone, take the rest down.
      let poll: NodeJS.Timeout | undefined;
      if (!freshProc) {
        poll = setInterval(() => {
          if (initGone(pidFile)) killLeftovers(runcPid, opts.rootfs);
        }, 200);
      }
      child.stdout.on('data', (d: Buffer) => opts.onOutput?.('stdout', d));
      child.stderr.on('data', (d: Buffer) => opts.onOutput?.('stderr', d));
      const onAbort = () => kill();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      // Its exit, not the end of its output: a leftover process may still hold the pipes.
      child.exited.then(
        (code) => {
          clearInterval(poll);
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(code);
        },
        (err: unknown) => {
          clearInterval(poll);
          opts.signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
    // Leftover processes: with a pid namespace the kernel killed them when
    // init exited; without one, find them by their root directory.
    if (!freshProc) {
      const n = killLeftovers(undefined, opts.rootfs);
      if (n) debug(`runc ${id}: killed ${n} leftover process(es)`);
    }
    const runtimeLog = keepLog ? readRuntimeLog(logFile) : [];
    for (const e of runtimeLog) debug(`runc ${id}: ${e.level}: ${e.msg}`);
    if (opts.signal?.aborted) throw abortError(opts.signal);
    return { exitCode, runtimeLog };
  } finally {
    // `runc run` deletes its container when it exits; state is left only by one
    // that did not see it through (killed, or failed half-way). Asking runc to
    // delete anyway cost a blocking runc start per step (four, one after another,
    // when four stages finish together).
    if (fs.existsSync(path.join(runcRoot(), id))) {
      const del = runc(['delete', '--force', id]);
      if (del.status !== 0 && !/does not exist|not found/.test(del.stderr)) debug(`runc delete ${id}: ${del.stderr}`);
    }
    for (const u of cleanupsDone) u();
    // The bundle goes in the background: nothing after the run reads it, and Node
    // finishes the removal before the process exits.
    void fsp
      .rm(bundle, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(unregisterBundle);
    await removeMountPoints(created);
  }
}

// `runc ARGS` with stdout and stderr piped: through the addon's posix_spawn
// (host spawnLight), which does not copy img's page tables as child_process's
// fork does (10-40 ms on the main thread per step; four in a row when parallel
// stages start together), else child_process.
function startRunc(args: string[]): LightChild {
  const light = spawnLight(findRunc(), args);
  if (light) return light;
  const child = spawn(findRunc(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? (osSignal(sig) ?? 9) : 0)));
  });
  return { pid: child.pid ?? 0, stdout: child.stdout, stderr: child.stderr, exited };
}

function osSignal(sig: NodeJS.Signals): number | undefined {
  return os.constants.signals[sig];
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  return new AbortError();
}
