// A pod the way CI systems start img, driven with runc as root: what
// `docker run -u 1000 --network host --security-opt seccomp=unconfined
// --security-opt apparmor=unconfined` (Docker 20.10) or a Kubernetes pod with
// those annotations gives a container. That is Docker's default capability
// bounding set (and no effective capabilities: the user is not root), its
// masked and read-only /proc paths, a read-only /sys, its default devices (no
// /dev/fuse), uid 1000, a writable root filesystem (an overlay over the cached
// Debian rootfs of make-rootfs.sh) and volumes bound in. Variants change one
// thing each, as users' environments do.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../helpers/cli';

export const ROOTFS_CACHE = process.env.IMG_POD_ROOTFS || '/var/cache/img-test';
export const POD_ROOTFS = path.join(ROOTFS_CACHE, 'pod');
export const BASE_ROOTFS = path.join(ROOTFS_CACHE, 'base');
export const POD_UID = 1000;
// Where img keeps its state in the pod: the image's VOLUME.
export const POD_STATE = '/home/user/.local/share/img';

export type PodVariant =
  | 'default' // Docker's defaults; newuidmap/newgidmap with file capabilities, as in img's image
  | 'setuid-helpers' // Debian's setuid-root newuidmap/newgidmap: the kernel refuses their map write (it wants CAP_SYS_ADMIN, not in Docker's set)
  | 'no-setuid-caps' // CAP_SETUID/CAP_SETGID dropped from the bounding set: the helpers cannot start
  | 'no-subids' // empty /etc/subuid and /etc/subgid mounted in
  | 'unmasked-proc' // --security-opt systempaths=unconfined: no masked or read-only /proc paths
  | 'privileged'; // --privileged: every capability, /proc unmasked, /sys writable, host /dev/fuse

// Docker's default capabilities (moby oci/caps/defaults.go).
export const DOCKER_CAPS = [
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
// Docker 20.10's masked and read-only paths (moby oci/defaults.go).
const DOCKER_MASKED = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];
const DOCKER_READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

// Every capability this kernel knows (for --privileged).
function allCaps(): string[] {
  const last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  const names = [
    'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
    'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
    'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
    'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
    'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
  ];
  return names.slice(0, last + 1).map((n) => `CAP_${n}`);
}

export interface Volume {
  host: string;
  container: string;
  readonly?: boolean;
}

export interface PodOptions {
  variant: PodVariant;
  argv: string[];
  env?: Record<string, string>;
  volumes?: Volume[];
  rootfs?: string; // default: the cached pod rootfs
  cwd?: string;
  timeoutMs?: number;
}

export interface PodResult {
  code: number;
  stdout: string;
  stderr: string;
}

const RUNC_ROOT = '/run/img-test-pods';

// Makes (or checks) the cached rootfs; debootstrap runs once per host.
export function ensureRootfs(): void {
  execFileSync('bash', [path.join(REPO, 'test', 'containers', 'make-rootfs.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// Why pod tests cannot run here, or false.
export function podSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'pod tests drive runc as root (run the suite as root, as CI does)';
  try {
    execFileSync('sh', ['-c', 'command -v runc && command -v debootstrap'], { stdio: 'ignore' });
  } catch {
    return 'runc and debootstrap are needed (.ci/setup-host installs them)';
  }
  return false;
}

// img from this checkout's sources, bundled by esbuild into one file (tsx
// would compile every module again in each pod: seconds per command), run
// by this Node; the addon and img-launch are the checkout's.
let bundleDir: string | undefined;
function bundleCli(): string {
  if (!bundleDir) {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-pod-cli-'));
    fs.chmodSync(bundleDir, 0o755);
    // The installed CLI's bundle (entry lib/cli/start.ts: it execs img-launch for commands that need the namespace).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('../../scripts/bundle.js') as { bundle(outfile: string): void }).bundle(path.join(bundleDir, 'img.cjs'));
    fs.chmodSync(path.join(bundleDir, 'img.cjs'), 0o644);
    fs.copyFileSync(path.join(REPO, 'build', 'Release', 'img_addon.node'), path.join(bundleDir, 'img_addon.node'));
    fs.chmodSync(path.join(bundleDir, 'img_addon.node'), 0o755);
    // img-launch beside the addon, where lib/host/index.ts looks for it.
    fs.copyFileSync(path.join(REPO, 'build', 'Release', 'img-launch'), path.join(bundleDir, 'img-launch'));
    fs.chmodSync(path.join(bundleDir, 'img-launch'), 0o755);
    process.on('exit', () => fs.rmSync(bundleDir!, { recursive: true, force: true }));
  }
  return bundleDir;
}

// What a pod needs to run img from this checkout (the volumes) and how (argv, env).
export function imgInPod(): { volumes: Volume[]; argv: string[]; env: Record<string, string> } {
  return {
    volumes: [
      { host: process.execPath, container: '/usr/local/bin/node', readonly: true },
      { host: bundleCli(), container: '/opt/img-cli', readonly: true },
    ],
    argv: ['/usr/local/bin/node', '/opt/img-cli/img.cjs'],
    env: { IMG_ADDON_PATH: '/opt/img-cli/img_addon.node' },
  };
}

function spec(o: PodOptions, rootfs: string, emptyIds: string): Record<string, unknown> {
  const privileged = o.variant === 'privileged';
  let caps = privileged ? allCaps() : DOCKER_CAPS;
  if (o.variant === 'no-setuid-caps') caps = caps.filter((c) => c !== 'CAP_SETUID' && c !== 'CAP_SETGID');
  const bind = (host: string, container: string, ro: boolean) => ({
    destination: container,
    type: 'bind',
    source: host,
    options: ['rbind', 'rprivate', ro ? 'ro' : 'rw'],
  });
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    bind('/etc/resolv.conf', '/etc/resolv.conf', true),
    bind('/etc/hosts', '/etc/hosts', true),
  ];
  if (o.variant === 'no-subids') mounts.push(bind(emptyIds, '/etc/subuid', true), bind(emptyIds, '/etc/subgid', true));
  if (o.variant === 'setuid-helpers') for (const h of ['newuidmap', 'newgidmap']) mounts.push(bind(path.join(BASE_ROOTFS, 'usr/bin', h), `/usr/bin/${h}`, true));
  for (const v of o.volumes ?? []) mounts.push(bind(v.host, v.container, v.readonly ?? false));
  const devices = privileged && fs.existsSync('/dev/fuse') ? [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }] : [];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: POD_UID, gid: POD_UID },
      args: o.argv,
      env: Object.entries({
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/home/user',
        HOSTNAME: 'img-pod',
        ...o.env,
      }).map(([k, v]) => `${k}=${v}`),
      cwd: o.cwd ?? '/home/user',
      // Docker gives a non-root user only the bounding set: execve clears the rest.
      capabilities: { bounding: caps },
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname: 'img-pod',
    mounts,
    linux: {
      // --network host: the test registry listens on the host's loopback.
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: privileged || o.variant === 'unmasked-proc' ? [] : DOCKER_MASKED,
      readonlyPaths: privileged || o.variant === 'unmasked-proc' ? [] : DOCKER_READONLY,
      devices,
      resources: { devices: [{ allow: privileged, access: 'rwm' }, ...(privileged ? [] : defaultDeviceRules())] },
    },
  };
}

// The device cgroup rules of Docker's default (null, zero, full, random, urandom, tty, pts, ptmx).
function defaultDeviceRules(): Record<string, unknown>[] {
  return [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
    { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
    { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
    { allow: true, type: 'c', major: 136, access: 'rwm' },
  ];
}

// Runs argv in a new pod and returns its exit code and output. The pod's root
// filesystem changes are thrown away; volumes keep what img wrote.
export async function runPod(o: PodOptions): Promise<PodResult> {
  const id = `img-pod-${randomBytes(6).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-pod-'));
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['upper', 'work', 'rootfs']) fs.mkdirSync(path.join(dir, d));
  const emptyIds = path.join(dir, 'empty-subids');
  fs.writeFileSync(emptyIds, '');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${o.rootfs ?? POD_ROOTFS},upperdir=${dir}/upper,workdir=${dir}/work`, rootfs]);
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec(o, rootfs, emptyIds)));
    return await new Promise<PodResult>((resolve, reject) => {
      const child = spawn('runc', ['--root', RUNC_ROOT, 'run', '--bundle', dir, id], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      const timer = setTimeout(() => {
        try {
          execFileSync('runc', ['--root', RUNC_ROOT, 'kill', id, 'KILL'], { stdio: 'ignore' });
        } catch {
          /* gone already */
        }
      }, o.timeoutMs ?? 180_000);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
      });
    });
  } finally {
    try {
      execFileSync('runc', ['--root', RUNC_ROOT, 'delete', '--force', id], { stdio: 'ignore' });
    } catch {
      /* never created */
    }
    execFileSync('umount', ['-l', rootfs]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// A host directory for a pod volume, owned by the pod's user (removed with fs.rmSync as root).
export function podVolume(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chownSync(dir, POD_UID, POD_UID);
  fs.chmodSync(dir, 0o755);
  return dir;
}
