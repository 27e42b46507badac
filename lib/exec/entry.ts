// How this img process came to be where it runs, as one small record that
// `--debug`, `img version` and `img doctor` print:
//
//   via            who set it up: 'img-launch' (addon/launcher/img-launch.c, before
//                  Node started), 'img' (img re-executed itself: launcher missing),
//                  'root' (real root: no namespace needed), 'none' (not entered)
//   mapping        'subids'  the caller's subordinate ranges, via newuidmap/newgidmap
//                  'single'  only the caller's own uid and gid (as 0)
//                  'host'    no mapping: real root on the host
//                  'none'    no user namespace could be created (or none was asked for)
//   mappingReason  why, in words (the failed helper and its error, the missing ranges, errno)
//   proc           'fresh' a new /proc mounts in a PID namespace (RUN steps get their own),
//                  'host' it does not (RUN steps see the host's /proc), 'unknown' not probed
//   procReason     why
//   launcherMs     time img-launch spent before starting Node (when it did)
//
// img-launch passes its facts as JSON in IMG_ENTRY; img's own re-exec passes
// the same. Facts in, words out: the launcher never phrases anything for users.
import * as fs from 'node:fs';
import { launcherPath } from '../host/index';
import { HostError } from '../util/errors';
import { debug, warn } from '../util/log';

export type Mapping = 'subids' | 'single' | 'host' | 'none';

export interface Entry {
  via: 'img-launch' | 'img' | 'root' | 'none';
  mapping: Mapping;
  mappingReason: string;
  proc: 'fresh' | 'host' | 'unknown';
  procReason: string;
  launcherMs?: number;
}

// What img-launch (or img's own re-exec) writes into IMG_ENTRY.
export interface EntryFacts {
  via: 'img-launch' | 'img';
  user?: string;
  mapping: 'subids' | 'single' | 'none';
  uidRanges?: number; // how many subordinate ranges were mapped
  gidRanges?: number;
  cause?: 'no-ranges' | 'no-helper' | 'helper-failed';
  noRangesIn?: string; // the file(s) without the caller's lines
  helper?: string; // the helper that failed or is missing
  helperStatus?: number;
  helperStderr?: string;
  errno?: string; // of the syscall that failed when mapping is 'none'
  syscall?: string;
  proc?: 'fresh' | 'host';
  procErrno?: string;
  launchedAt?: number; // epoch ms when img-launch started
  launcherMs?: number;
}

export const ENTRY_ENV = 'IMG_ENTRY';

let facts: EntryFacts | null | undefined;
let procNote: { proc: 'fresh' | 'host'; reason: string } | undefined;

export function entryFacts(): EntryFacts | null {
  if (facts === undefined) {
    facts = null;
    const text = process.env[ENTRY_ENV];
    if (text) {
      try {
        facts = JSON.parse(text) as EntryFacts;
      } catch {
        debug(`${ENTRY_ENV} is not JSON, ignored: ${text.slice(0, 80)}`);
      }
    }
  }
  return facts;
}

// For lib/exec/runc.ts when it probed /proc itself (the launcher did not).
export function noteProc(proc: 'fresh' | 'host', reason: string): void {
  procNote = { proc, reason };
}

function who(f: EntryFacts): string {
  return f.user ?? String(process.getuid?.() ?? '');
}

function mappingReason(f: EntryFacts): string {
  if (f.mapping === 'subids') return `the subordinate ranges of ${who(f)} in /etc/subuid and /etc/subgid, written by newuidmap/newgidmap`;
  if (f.mapping === 'none') return `${f.syscall ?? 'unshare(CLONE_NEWUSER)'} failed: ${f.errno ?? 'unknown error'}`;
  switch (f.cause) {
    case 'no-ranges':
      return `no subordinate ids for ${who(f)} in ${f.noRangesIn ?? '/etc/subuid and /etc/subgid'}`;
    case 'no-helper':
      return `${f.helper ?? 'newuidmap/newgidmap'} not found`;
    default:
      return `${f.helper ?? 'newuidmap'} failed (exit ${f.helperStatus ?? '?'}): ${f.helperStderr || 'no message'}`;
  }
}

export function currentEntry(): Entry {
  const proc = (): Pick<Entry, 'proc' | 'procReason'> => {
    if (procNote) return { proc: procNote.proc, procReason: procNote.reason };
    const f = entryFacts();
    if (f?.proc === 'fresh') return { proc: 'fresh', procReason: 'a fresh /proc mounts in a new PID namespace here' };
    if (f?.proc === 'host')
      return { proc: 'host', procReason: `mounting a fresh /proc in a PID namespace failed (${f.procErrno ?? 'error'}): the host's /proc is masked or covered` };
    return { proc: 'unknown', procReason: 'not probed yet: the first RUN step probes it' };
  };
  if (process.getuid?.() === 0 && process.env.IMG_USERNS !== '1')
    return { via: 'root', mapping: 'host', mappingReason: 'real root: no user namespace needed', ...proc() };
  const f = entryFacts();
  if (!f) {
    const why = launcherPath() ? 'this command did not need one' : 'img-launch is not built (npm run build:addon)';
    return { via: 'none', mapping: 'none', mappingReason: `not entered: ${why}`, ...proc() };
  }
  return { via: f.via, mapping: f.mapping, mappingReason: mappingReason(f), ...proc(), launcherMs: f.launcherMs };
}

// The lines --debug shows once a command is in its namespace.
export function debugEntry(): void {
  const e = currentEntry();
  const ms = e.launcherMs === undefined ? '' : ` in ${e.launcherMs.toFixed(1)} ms`;
  debug(`user namespace: entered by ${e.via}${ms}; mapping ${e.mapping}: ${e.mappingReason}`);
  debug(`/proc for RUN steps: ${e.proc} (${e.procReason})`);
}

// The one warning a single-id mapping deserves: what failed, what is lost, the fix.
export function warnSingleMapping(): void {
  const f = entryFacts();
  if (!f || f.mapping !== 'single') return;
  const user = who(f);
  let fix: string;
  if (f.cause === 'no-ranges')
    fix = `Add "${user}:100000:65536" to /etc/subuid and /etc/subgid (or run: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user})`;
  else if (f.cause === 'no-helper') fix = 'Install newuidmap and newgidmap (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)';
  else
    fix =
      `newuidmap and newgidmap must be setuid root or carry the cap_setuid/cap_setgid file capabilities (ls -l ${f.helper ?? 'newuidmap'}; getcap), ` +
      'and inside a container the engine must let them write id maps (see img doctor)';
  warn(
    `user namespace maps only your own ids (uid and gid as 0): ${mappingReason(f)}. ` +
      `Other owners in images and COPY --chown are kept in the layers img writes, but RUN steps see those files as root's, and a RUN chown or USER to other ids fails. ${fix}`,
  );
}

function readSysctl(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function seccompFiltered(): boolean {
  try {
    return /^Seccomp:\s*2$/m.test(fs.readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
}

// The knob that keeps user namespaces off here, told apart by errno and sysctls:
// ENOSPC is the namespace count limit, EPERM a sysctl, AppArmor or a seccomp
// filter, EINVAL a kernel without user namespaces, EUSERS nesting too deep.
export function usernsKnob(errno: string | undefined): string {
  const max = readSysctl('/proc/sys/user/max_user_namespaces');
  if (errno === 'ENOSPC')
    return max === '0'
      ? 'user namespaces are switched off: sysctl -w user.max_user_namespaces=15000'
      : `the limit of user namespaces is reached (user.max_user_namespaces=${max ?? '?'}): raise it with sysctl -w user.max_user_namespaces=15000`;
  if (errno === 'EINVAL') return 'this kernel was built without user namespaces (CONFIG_USER_NS): use a kernel that has them, or run img as root';
  if (errno === 'EUSERS') return 'user namespaces are nested too deep (32 levels): run img from an outer namespace';
  const knobs: string[] = [];
  if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') knobs.push('sysctl -w kernel.unprivileged_userns_clone=1');
  if (readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1')
    knobs.push('sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile that allows userns for img)');
  if (max === '0') knobs.push('sysctl -w user.max_user_namespaces=15000');
  if (knobs.length) return `enable unprivileged user namespaces: ${knobs.join('; ')}`;
  if (seccompFiltered())
    return 'a seccomp profile blocks unshare/clone of user namespaces: run the container with --security-opt seccomp=unconfined (Kubernetes: securityContext.seccompProfile.type: Unconfined)';
  return 'enable unprivileged user namespaces (kernel.unprivileged_userns_clone=1 on older Debian kernels, user.max_user_namespaces > 0, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu >= 23.10), or run img as root';
}

export function usernsError(errno: string | undefined, cause?: unknown): HostError {
  return new HostError(`cannot create a user namespace (${errno ?? 'unknown error'}): img needs one to work as an unprivileged user`, {
    hint: usernsKnob(errno),
    cause,
  });
}
