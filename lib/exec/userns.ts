// The door into img's user namespace: every command that touches snapshots
// calls enterUserNamespace() first. Normally img-launch
// (addon/launcher/img-launch.c) entered the namespace before Node started and
// left its record (./entry.ts): the door only reads it. img started without
// the launcher (`node bin/img.js`, tests running the sources) execs the
// launcher in place, which costs one more Node start. With no launcher built
// (an addon built before it existed) img re-executes itself from Node as it
// did before, with the same mapping fallbacks.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { debug } from '../util/log';
import { envList, launcherPath, loadAddon, selfArgv } from '../host';
import { buildIdMap, currentUserName, findHelper, readSubIds, subIdFile, type IdMapEntry } from './idmap';
import { ENTRY_ENV, debugEntry, entryFacts, usernsError, warnSingleMapping, type EntryFacts } from './entry';

export const USERNS_ENV = 'IMG_USERNS';
// Set in the child: the caller's host ids (for things that must name them, e.g. fuse).
export const HOST_UID_ENV = 'IMG_HOST_UID';
export const HOST_GID_ENV = 'IMG_HOST_GID';

export function inUserNamespace(): boolean {
  return process.env[USERNS_ENV] === '1';
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (err, _stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr).trim() }));
      else resolve();
    });
  });
}

function mapArgs(pid: number, map: IdMapEntry[]): string[] {
  return [String(pid), ...map.flatMap((e) => [String(e.inside), String(e.outside), String(e.count)])];
}


interface NamespaceChild {
  pid: number;
  syncFd: number;
}

// A child unshared into a user + mount namespace, waiting for its maps; its
// environment carries the facts it will run under.
function cloneChild(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string }, facts: EntryFacts): NamespaceChild {
  const base = opts.env ?? process.env;
  const env = {
    ...base,
    // Inside, the home of uid 0 (/root) would be taken for the state and cache dirs (as img-launch does).
    ...(base.HOME ? {} : { HOME: os.userInfo().homedir }),
    [USERNS_ENV]: '1',
    [HOST_UID_ENV]: String(process.getuid!()),
    [HOST_GID_ENV]: String(process.getgid!()),
    [ENTRY_ENV]: JSON.stringify(facts),
  };
  try {
    return loadAddon().cloneUserns({ argv, env: envList(env), cwd: opts.cwd ?? process.cwd() });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOSPC' || code === 'EACCES' || code === 'EINVAL' || code === 'EUSERS') throw usernsError(code, err);
    throw err;
  }
}

async function abandon(child: NamespaceChild): Promise<void> {
  const addon = loadAddon();
  addon.releaseChild(child.syncFd, false);
  await addon.waitpid(child.pid);
}

// Starts argv in a fresh user + mount namespace and returns its pid (the
// caller waits with loadAddon().waitpid). The mapping falls back as
// img-launch's does: subordinate ranges through newuidmap/newgidmap, else the
// caller's own ids, each attempt a fresh child (a written map cannot change).
export async function spawnInUserNamespace(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<number> {
  const addon = loadAddon();
  const uid = process.getuid!();
  const gid = process.getgid!();
  const user = currentUserName();
  const [subuid, subgid] = await Promise.all([readSubIds(subIdFile('uid'), user, uid), readSubIds(subIdFile('gid'), user, uid)]);
  const newuidmap = findHelper('newuidmap');
  const newgidmap = findHelper('newgidmap');
  const facts: EntryFacts = { via: 'img', user, mapping: 'subids' };
  if (subuid.length === 0 || subgid.length === 0) {
    const noRangesIn = subuid.length === 0 && subgid.length === 0 ? `${subIdFile('uid')} and ${subIdFile('gid')}` : subuid.length === 0 ? subIdFile('uid') : subIdFile('gid');
    Object.assign(facts, { mapping: 'single', cause: 'no-ranges', noRangesIn });
  } else if (!newuidmap || !newgidmap) {
    Object.assign(facts, { mapping: 'single', cause: 'no-helper', helper: newuidmap ? 'newgidmap' : 'newuidmap' });
  } else {
    const child = cloneChild(argv, opts, facts);
    const [u, g] = await Promise.allSettled([
      run(newuidmap, mapArgs(child.pid, buildIdMap(uid, subuid))),
      run(newgidmap, mapArgs(child.pid, buildIdMap(gid, subgid))),
    ]);
    if (u.status === 'fulfilled' && g.status === 'fulfilled') {
      addon.releaseChild(child.syncFd, true);
      return child.pid;
    }
    await abandon(child);
    const failed = u.status === 'rejected' ? { helper: newuidmap, err: u.reason } : { helper: newgidmap, err: (g as PromiseRejectedResult).reason };
    const e = failed.err as { code?: unknown; stderr?: string; message?: string };
    Object.assign(facts, {
      mapping: 'single',
      cause: 'helper-failed',
      helper: failed.helper,
      helperStatus: typeof e.code === 'number' ? e.code : 127,
      helperStderr: e.stderr || e.message,
    });
  }
  const child = cloneChild(argv, opts, facts);
  try {
    await fs.promises.writeFile(`/proc/${child.pid}/setgroups`, 'deny');
    await fs.promises.writeFile(`/proc/${child.pid}/uid_map`, `0 ${uid} 1\n`);
    await fs.promises.writeFile(`/proc/${child.pid}/gid_map`, `0 ${gid} 1\n`);
  } catch (err) {
    await abandon(child);
    throw usernsError((err as NodeJS.ErrnoException).code, err);
  }
  addon.releaseChild(child.syncFd, true);
  return child.pid;
}

// Whether this process is in its terminal's foreground process group
// (fields pgrp and tpgid of /proc/self/stat).
function inForegroundGroup(): boolean {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(f[2]);
    const tpgid = Number(f[5]);
    return tpgid > 0 && tpgid === pgrp;
  } catch {
    return false;
  }
}

// Makes sure this command runs in its user namespace: returns when it does
// (or when it needs none: real root); otherwise replaces or re-runs the
// command inside and exits with its status. Throws when the host allows no
// user namespace.
export async function enterUserNamespace(opts: { reason?: string } = {}): Promise<void> {
  if (inUserNamespace()) {
    debugEntry();
    warnSingleMapping();
    return;
  }
  if (process.getuid?.() === 0) return; // real root
  const tried = entryFacts();
  if (tried?.mapping === 'none') throw usernsError(tried.errno);
  const why = opts.reason ? ` (${opts.reason})` : '';
  const launcher = launcherPath();
  const addon = loadAddon();
  if (launcher && addon.execve) {
    debug(`img was started without img-launch${why}: re-executing through ${launcher}`);
    addon.execve(launcher, [launcher, 'enter', ...selfArgv()], envList(process.env));
  }
  debug(`img-launch ${launcher ? 'cannot be exec\'d by this addon build' : 'not found'}${why}: re-executing in a user namespace from Node (rebuild with npm run build:addon to avoid the second start)`);
  const pid = await spawnInUserNamespace(selfArgv());
  // The child shares our process group: a terminal's ^C/hangup already
  // reaches it, and a second copy would look like a second ^C. Forward only
  // signals the terminal did not deliver to the group (kill <pid>, timeout).
  const forward = (sig: NodeJS.Signals) => {
    if (sig !== 'SIGTERM' && inForegroundGroup()) return;
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  const code = await addon.waitpid(pid);
  process.exit(code);
}
