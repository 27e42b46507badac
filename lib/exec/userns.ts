// The single door into a user namespace. Every command that touches
// snapshots calls enterUserNamespace() first. An unprivileged caller is
// re-executed (same node, same flags, same argv) as root of a new user +
// mount namespace whose ids map to the caller's subordinate ranges; the
// outer process only relays signals and the exit code.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { HostError } from '../util/errors';
import { debug, warn } from '../util/log';
import { isSea, loadAddon } from '../host';
import { buildIdMap, currentUserName, findHelper, readSubIds, type IdMapEntry } from './idmap';

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

function readSysctl(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

// Names the knob that keeps user namespaces off on this host.
export function usernsDisabledHint(): string {
  const knobs: string[] = [];
  if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0')
    knobs.push('sysctl -w kernel.unprivileged_userns_clone=1');
  if (readSysctl('/proc/sys/user/max_user_namespaces') === '0') knobs.push('sysctl -w user.max_user_namespaces=15000');
  if (readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1')
    knobs.push('sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile allowing userns for node)');
  if (knobs.length) return `enable unprivileged user namespaces: ${knobs.join('; ')}`;
  return 'enable unprivileged user namespaces (kernel.unprivileged_userns_clone=1 on Debian < 11 kernels, user.max_user_namespaces > 0, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu >= 23.10), or run img as root';
}

// IMG_SUBUID_FILE/IMG_SUBGID_FILE point the range lookup elsewhere (tests of
// the single-id fallback). newuidmap still checks the real /etc files.
export function subIdFile(kind: 'uid' | 'gid'): string {
  return (kind === 'uid' ? process.env.IMG_SUBUID_FILE : process.env.IMG_SUBGID_FILE) || `/etc/sub${kind}`;
}

function mapArgs(pid: number, map: IdMapEntry[]): string[] {
  return [String(pid), ...map.flatMap((e) => [String(e.inside), String(e.outside), String(e.count)])];
}

async function writeIdMaps(pid: number, uid: number, gid: number, user: string | undefined): Promise<void> {
  const [subuid, subgid] = await Promise.all([readSubIds(subIdFile('uid'), user, uid), readSubIds(subIdFile('gid'), user, uid)]);
  const who = user ?? String(uid);
  if (subuid.length === 0 || subgid.length === 0) {
    // Only the caller's own ids: enough for images whose files are all root's.
    warn(
      `no subordinate ids for ${who} in /etc/subuid and /etc/subgid: mapping only root; files owned by other users in images will fail. ` +
        `Add "${who}:100000:65536" to /etc/subuid and /etc/subgid (or run: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${who})`,
    );
    await fs.promises.writeFile(`/proc/${pid}/setgroups`, 'deny');
    await fs.promises.writeFile(`/proc/${pid}/uid_map`, `0 ${uid} 1\n`);
    await fs.promises.writeFile(`/proc/${pid}/gid_map`, `0 ${gid} 1\n`);
    return;
  }
  const newuidmap = findHelper('newuidmap');
  const newgidmap = findHelper('newgidmap');
  if (!newuidmap || !newgidmap)
    throw new HostError('newuidmap/newgidmap not found: cannot map the subordinate id ranges', {
      hint: 'install them: apt-get install uidmap (dnf install shadow-utils on Fedora)',
    });
  const uidMap = buildIdMap(uid, subuid);
  const gidMap = buildIdMap(gid, subgid);
  try {
    await Promise.all([run(newuidmap, mapArgs(pid, uidMap)), run(newgidmap, mapArgs(pid, gidMap))]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr;
    throw new HostError(`cannot map ids into the user namespace: ${stderr || (err as Error).message}`, {
      hint: `check that /etc/subuid and /etc/subgid grant ${who} its ranges, and that newuidmap/newgidmap are setuid root (ls -l ${newuidmap})`,
      cause: err,
    });
  }
  debug(`userns ${pid}: uid map ${JSON.stringify(uidMap)}, gid map ${JSON.stringify(gidMap)}`);
}

// Starts argv in a fresh user + mount namespace with the caller's id maps and
// returns its pid (the caller waits). Exported for tests and for tools that
// need a namespaced helper process rather than a re-exec.
export async function spawnInUserNamespace(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; pidns?: boolean } = {},
): Promise<number> {
  const addon = loadAddon();
  const uid = process.getuid!();
  const gid = process.getgid!();
  const env = { ...(opts.env ?? process.env), [USERNS_ENV]: '1', [HOST_UID_ENV]: String(uid), [HOST_GID_ENV]: String(gid) };
  let child: { pid: number; syncFd: number };
  try {
    child = addon.cloneUserns({
      argv,
      env: Object.entries(env)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${v}`),
      cwd: opts.cwd ?? process.cwd(),
      pidns: opts.pidns,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOSPC' || code === 'EACCES' || code === 'EINVAL')
      throw new HostError(`cannot create a user namespace (${code}): unprivileged user namespaces are disabled on this host`, {
        hint: usernsDisabledHint(),
        cause: err,
      });
    throw err;
  }
  try {
    await writeIdMaps(child.pid, uid, gid, currentUserName());
  } catch (err) {
    addon.releaseChild(child.syncFd, false);
    await addon.waitpid(child.pid);
    throw err;
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

// The command line that runs this process again. A single-file binary (SEA)
// has argv [binary, binary, ...args] and applies its own execArgv.
export function selfArgv(): string[] {
  if (isSea()) return [process.execPath, ...process.argv.slice(2)];
  return [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
}

// Re-executes this very command inside the namespace and exits with its code.
// Returns only when there is nothing to do: real root, or already inside.
export async function enterUserNamespace(opts: { reason?: string } = {}): Promise<void> {
  if (process.getuid?.() === 0) return;
  if (inUserNamespace()) return;
  debug(`entering a user namespace${opts.reason ? ` (${opts.reason})` : ''}`);
  const argv = selfArgv();
  const pid = await spawnInUserNamespace(argv);
  const addon = loadAddon();
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
