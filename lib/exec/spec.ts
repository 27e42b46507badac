// The OCI runtime spec (config.json) for one RUN step in a rootless
// container. We are already root of our own user namespace, so the spec has
// no user namespace entry; runc (running there as uid 0) creates pid, ipc,
// uts, mount (+ network) namespaces owned by ours. Devices: runc bind-mounts
// its default set (null, zero, full, random, urandom, tty) from the host,
// because mknod of real devices is not allowed in a user namespace.
import * as fs from 'node:fs';

// BuildKit's default capabilities for RUN.
export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

// runc's default spec masks and read-only paths (plus BuildKit's powercap).
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface SpecInput {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  hostname: string;
  network: 'default' | 'none' | 'host';
  // Host files bind-mounted read-only at /etc/resolv.conf and /etc/hosts.
  resolvConf: string;
  hosts: string;
  // false: the host cannot mount a fresh /proc for us; no pid namespace, host /proc bound.
  freshProc: boolean;
  userMounts: OciMount[];
  // RLIMIT_NOFILE to set (soft = hard), or undefined to inherit.
  nofile?: number;
  // Whether gid 5 (tty) is mapped in our namespace (devpts gid=5 needs it).
  ttyGidMapped: boolean;
  // --shm-size: bytes of the /dev/shm tmpfs (default 64 MiB, BuildKit's).
  shmSize?: number;
  // --ulimit: set as given; a type given here replaces the nofile default.
  rlimits?: Rlimit[];
  // RUN --security=insecure (granted by --allow security.insecure): every
  // capability this process has in its user namespace, no masked or read-only
  // paths, a writable /sys — BuildKit's insecure spec, minus what a user namespace cannot give.
  insecure?: boolean;
}

// One process rlimit as OCI takes it ('unlimited' is RLIM_INFINITY).
export interface Rlimit {
  type: string; // 'RLIMIT_NOFILE'
  soft: number | 'unlimited';
  hard: number | 'unlimited';
}

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

// The container's mounts, in the order runc makes them. Their destinations depend only on
// freshProc, network and userMounts (runc.ts looks for the missing ones before the rest
// of the spec is known).
export function specMounts(input: Pick<SpecInput, 'freshProc' | 'network' | 'resolvConf' | 'hosts' | 'ttyGidMapped' | 'userMounts' | 'shmSize' | 'insecure'>): OciMount[] {
  const sysRo = input.insecure ? [] : ['ro'];
  const mounts: OciMount[] = [];
  if (input.freshProc) mounts.push({ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
  else mounts.push({ destination: '/proc', type: 'bind', source: '/proc', options: ['rbind', 'nosuid', 'noexec', 'nodev'] });
  mounts.push(
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(input.ttyGidMapped ? ['gid=5'] : [])],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', shmOption(input.shmSize)] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  );
  // sysfs can only be mounted by the owner of the network namespace: with
  // network=none runc makes one for us; otherwise bind the host's read-only.
  if (input.network === 'none') mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...sysRo] });
  else mounts.push({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', ...sysRo] });
  mounts.push(
    { destination: '/etc/resolv.conf', type: 'bind', source: input.resolvConf, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
    { destination: '/etc/hosts', type: 'bind', source: input.hosts, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
  );
  mounts.push(...input.userMounts);
  return mounts;
}

// The /dev/shm size option: whole KiB as BuildKit writes it, bytes when not a multiple.
function shmOption(bytes: number | undefined): string {
  const b = bytes && bytes > 0 ? bytes : DEFAULT_SHM_SIZE;
  return b % 1024 === 0 ? `size=${b / 1024}k` : `size=${b}`;
}

// The rlimits of the process: the nofile default, then --ulimit's (which win).
function rlimitsOf(input: SpecInput): Rlimit[] | undefined {
  const out = new Map<string, Rlimit>();
  if (input.nofile) out.set('RLIMIT_NOFILE', { type: 'RLIMIT_NOFILE', hard: input.nofile, soft: input.nofile });
  for (const r of input.rlimits ?? []) out.set(r.type, r);
  return out.size ? [...out.values()] : undefined;
}

export function buildSpec(input: SpecInput): Record<string, unknown> {
  const mounts = specMounts(input);
  const namespaces: { type: string }[] = [{ type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (input.freshProc) namespaces.unshift({ type: 'pid' });
  if (input.network === 'none') namespaces.push({ type: 'network' });

  const env = mergeEnv([DEFAULT_PATH], input.env);
  const rlimits = rlimitsOf(input);

  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, ...(input.additionalGids.length ? { additionalGids: input.additionalGids } : {}) },
      args: input.args,
      env,
      cwd: input.cwd || '/',
      capabilities: input.insecure ? allCapabilities() : { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      ...(rlimits ? { rlimits } : {}),
      // setuid programs (su, sudo, ping) must work as they do under docker.
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts,
    linux: {
      // No resources and no cgroupsPath: a rootless runc without cgroup
      // delegation then skips cgroups instead of failing.
      namespaces,
      maskedPaths: input.insecure ? [] : MASKED_PATHS,
      readonlyPaths: input.insecure ? [] : READONLY_PATHS,
    },
  };
}

// The process environment as BuildKit's spec (containerd's WithEnv) makes it: the
// default PATH first, each variable replacing an earlier one of its name in place
// (a secret's env= over an ENV of that name; the image's PATH where the default was),
// new names appended in order. A name without '=' removes that variable.
export function mergeEnv(defaults: string[], overrides: string[]): string[] {
  const out: (string | null)[] = [];
  const at = new Map<string, number>();
  const put = (e: string) => {
    const eq = e.indexOf('=');
    const key = eq < 0 ? e : e.slice(0, eq);
    const i = at.get(key);
    if (eq < 0) {
      if (i !== undefined) out[i] = null;
      return;
    }
    if (i !== undefined) out[i] = e;
    else {
      at.set(key, out.length);
      out.push(e);
    }
  };
  defaults.forEach(put);
  overrides.forEach(put);
  return out.filter((e): e is string => e !== null);
}

// config.json's text: RLIM_INFINITY (2^64-1) is past a JS number, so 'unlimited' is written as the literal.
export function specJson(spec: Record<string, unknown>): string {
  const mark = '\u0000rlim-infinity\u0000';
  const text = JSON.stringify(spec, (k, v) => ((k === 'soft' || k === 'hard') && v === 'unlimited' ? mark : v), 2);
  return text.split(JSON.stringify(mark)).join('18446744073709551615');
}

// Capability numbers → names (linux/capability.h), for reading /proc/self/status.
const CAP_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
].map((n) => `CAP_${n}`);

// The capabilities this process holds (CapEff), by name: as root of its own user
// namespace, all of them — over that namespace's resources only, never the host's.
export function currentCapabilities(status?: string): string[] {
  let text = status;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/status', 'utf8');
    } catch {
      return DEFAULT_CAPS;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  if (!m) return DEFAULT_CAPS;
  const bits = BigInt(`0x${m[1]}`);
  return CAP_NAMES.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

// BuildKit's insecure mode (entitlements/security WithInsecureSpec) adds every current capability to all five sets.
function allCapabilities(): Record<string, string[]> {
  const caps = [...new Set([...DEFAULT_CAPS, ...currentCapabilities()])];
  return { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
}

// The rlimit names docker's --ulimit takes (go-units) → /proc/self/limits rows.
export const ULIMIT_ROWS: Record<string, string> = {
  core: 'Max core file size',
  cpu: 'Max cpu time',
  data: 'Max data size',
  fsize: 'Max file size',
  locks: 'Max file locks',
  memlock: 'Max locked memory',
  msgqueue: 'Max msgqueue size',
  nice: 'Max nice priority',
  nofile: 'Max open files',
  nproc: 'Max processes',
  rss: 'Max resident set',
  rtprio: 'Max realtime priority',
  rttime: 'Max realtime timeout',
  sigpending: 'Max pending signals',
  stack: 'Max stack size',
};

// This process's hard limit for a --ulimit name ('unlimited', a number, or undefined when unknown).
export function hardLimit(name: string, limits?: string): number | 'unlimited' | undefined {
  const row = ULIMIT_ROWS[name];
  if (!row) return undefined;
  let text = limits;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith(row + ' '));
  if (!line) return undefined;
  const hard = line.slice(row.length).trim().split(/\s+/)[1];
  if (hard === 'unlimited') return 'unlimited';
  const n = Number(hard);
  return Number.isFinite(n) ? n : undefined;
}

// RLIMIT_NOFILE to request: 1048576 when our hard limit allows it (raising
// the hard limit needs privileges a user namespace does not grant), else our
// current hard limit, or undefined when it cannot be read (inherit).
export function nofileLimit(): number | undefined {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    if (!line) return undefined;
    const parts = line.trim().split(/\s+/);
    const hard = parts[4];
    if (hard === 'unlimited') return 1048576;
    const n = Number(hard);
    if (!Number.isFinite(n)) return undefined;
    return Math.min(n, 1048576);
  } catch {
    return undefined;
  }
}

export function hostsFile(hostname: string, extra: { host: string; ip: string }[] = []): string {
  const lines = [`127.0.0.1\tlocalhost ${hostname}`, '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const e of extra) lines.push(`${e.ip}\t${e.host}`);
  return lines.join('\n') + '\n';
}

// The host's resolv.conf, or public resolvers when it has none. Loopback
// nameservers only work when the container shares the host network.
export function resolvConf(network: 'default' | 'none' | 'host'): string {
  let text = '';
  try {
    text = fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* none */
  }
  const servers = text.split('\n').filter((l) => /^\s*nameserver\s+/.test(l));
  const loopbackOnly = servers.length > 0 && servers.every((l) => /nameserver\s+(127\.|::1)/.test(l));
  if (servers.length === 0 || (loopbackOnly && network === 'none')) {
    const rest = text.split('\n').filter((l) => l.trim() && !/^\s*nameserver\s+/.test(l));
    return [...rest, 'nameserver 8.8.8.8', 'nameserver 8.8.4.4'].join('\n') + '\n';
  }
  return text.endsWith('\n') ? text : text + '\n';
}
