// The trials `img doctor` runs where a build runs: inside the user namespace
// img enters (or as real root), in parallel, each the same operation a build
// performs — a fresh /proc in a PID namespace, an overlay mount on the state
// dir's filesystem, a fuse-overlayfs mount, a runc container.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { currentEntry, type Entry } from '../exec/entry';
import { parseProcIdMap, type IdMapEntry } from '../exec/idmap';
import { runContainer, type BindMount } from '../exec/run';
import { findRunc, freshProcTrial } from '../exec/runc';
import { inUserNamespace } from '../snapshot/overlay';
import { backendTrial } from '../snapshot/open';

// null = it worked, else why not.
export interface Trials {
  entry: Entry; // how this namespace was entered (lib/exec/entry.ts)
  uidMap: IdMapEntry[]; // the maps it got
  gidMap: IdMapEntry[];
  proc: string | null;
  overlayfs: string | null;
  fuseOverlayfs: string | null;
  runc: string | null;
  runcVersion?: string;
  runcWarnings: string[];
}

// A root filesystem made of the host's /usr (and /bin, /lib… as the host has
// them: symlinks into /usr, or directories bound read-only) to run /bin/sh from.
function hostToolsRootfs(rootfs: string): BindMount[] {
  fs.mkdirSync(rootfs, { recursive: true });
  const mounts: BindMount[] = [{ type: 'bind', source: '/usr', target: '/usr', readonly: true }];
  for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(`/${d}`);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(`/${d}`), path.join(rootfs, d));
    else if (st.isDirectory()) mounts.push({ type: 'bind', source: `/${d}`, target: `/${d}`, readonly: true });
  }
  return mounts;
}

async function runcTrial(stateDir: string, dir: string, freshProc: boolean): Promise<Pick<Trials, 'runc' | 'runcVersion' | 'runcWarnings'>> {
  let runc: string;
  try {
    runc = findRunc();
  } catch (err) {
    return { runc: (err as Error).message, runcWarnings: [] };
  }
  const version = spawnSync(runc, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout?.match(/runc version (\S+)/)?.[1];
  const rootfs = path.join(dir, 'rootfs');
  let out = '';
  try {
    const res = await runContainer({
      rootfs,
      args: ['/bin/sh', '-c', 'echo img-doctor'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      user: '0:0',
      network: 'default',
      mounts: hostToolsRootfs(rootfs),
      stateDir,
      freshProc,
      signal: AbortSignal.timeout(20_000),
      onOutput: (_s, chunk) => (out += chunk.toString()),
    });
    const warnings = res.runtimeLog.filter((e) => e.level === 'warning').map((e) => e.msg);
    if (res.exitCode !== 0 || out.trim() !== 'img-doctor')
      return { runc: `a trial container exited ${res.exitCode}: ${out.trim().split('\n').pop() ?? ''}`, runcVersion: version, runcWarnings: warnings };
    return { runc: null, runcVersion: version, runcWarnings: warnings };
  } catch (err) {
    return { runc: (err as Error).message, runcVersion: version, runcWarnings: [] };
  }
}

const caught = (p: Promise<string | null>) => p.catch((err: unknown) => (err as Error).message);

export async function runTrials(stateDir: string): Promise<Trials> {
  const dir = path.join(stateDir, 'snapshots', 'tmp', `doctor-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  try {
    const userns = inUserNamespace();
    const proc = freshProcTrial();
    const [overlayfs, fuseOverlayfs, runc] = await Promise.all([
      caught(backendTrial('overlayfs', path.join(dir, 'overlayfs'), userns)),
      caught(backendTrial('fuse-overlayfs', path.join(dir, 'fuse'), userns)),
      runcTrial(stateDir, path.join(dir, 'runc'), proc === null),
    ]);
    return {
      entry: currentEntry(),
      uidMap: parseProcIdMap(fs.readFileSync('/proc/self/uid_map', 'utf8')),
      gidMap: parseProcIdMap(fs.readFileSync('/proc/self/gid_map', 'utf8')),
      proc,
      overlayfs,
      fuseOverlayfs,
      ...runc,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
