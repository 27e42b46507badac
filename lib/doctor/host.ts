// What `img doctor` learns outside any namespace: facts read from /proc, /sys
// and the caller's files, and the one trial that must run out here — whether
// newuidmap/newgidmap may write the caller's ranges into a new namespace's maps.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonStatus, loadAddon } from '../host/index';
import type { HostProbe } from '../host/native';
import { buildIdMap, currentUserName, findHelper, readSubIds, subIdFile, type IdMapEntry, type IdRange } from '../exec/idmap';
import { BINFMT_DIR, checkEmulation, emulationFix } from '../exec/binfmt';
import { usernsKnob } from '../exec/entry';
import { configuredCredentials } from '../registry/credentials';
import { bytesSize } from '../util/units';
import type { Check } from './report';

// What a single-id mapping costs, as doctor words it for both checks that find one.
export const SINGLE_ID_COST =
  'single-id mapping: a RUN step cannot give files to other ids (RUN chown, USER 1000, packages that add users fail there); owners in base images and COPY --chown are kept';

const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_SYS_ADMIN = 21;
const has = (set: bigint, cap: number) => ((set >> BigInt(cap)) & 1n) === 1n;

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function kernelCheck(probe: HostProbe): Check {
  const [major, minor] = probe.kernel.split('.').map(Number);
  const found = `Linux ${probe.kernel} (${os.machine()})`;
  if (major > 5 || (major === 5 && minor >= 11)) return { id: 'kernel', title: 'kernel', status: 'ok', found };
  return {
    id: 'kernel',
    title: 'kernel',
    status: 'warn',
    found,
    cost: 'overlayfs cannot be mounted in a user namespace before Linux 5.11: fuse-overlayfs or native backend',
    fix: 'a kernel ≥ 5.11',
  };
}

export function addonCheck(): Check {
  const st = addonStatus();
  if (st.loaded) return { id: 'addon', title: 'native addon', status: 'ok', found: 'loaded' };
  return { id: 'addon', title: 'native addon', status: 'fail', found: `does not load: ${st.error ?? 'unknown error'}`, cost: 'img cannot build', fix: 'IMG_BUILD_FROM_SOURCE=1 npm rebuild img (builds it from source; needs cmake, make, g++ and zlib headers)' };
}

export function usernsCheck(probe: HostProbe): Check {
  const max = readText('/proc/sys/user/max_user_namespaces');
  if (probe.uid === 0) return { id: 'userns', title: 'user namespaces', status: 'info', found: 'not needed: running as root' };
  if (probe.userns) return { id: 'userns', title: 'user namespaces', status: 'ok', found: `unprivileged ones can be created${max ? ` (user.max_user_namespaces=${max})` : ''}` };
  return {
    id: 'userns',
    title: 'user namespaces',
    status: 'fail',
    found: `unshare(CLONE_NEWUSER) fails with ${probe.usernsError ?? 'an error'}`,
    cost: 'img cannot build as this user',
    fix: usernsKnob(probe.usernsError),
  };
}

export interface SubIds {
  user: string;
  uid: IdRange[];
  gid: IdRange[];
}

export async function readCallerSubIds(): Promise<SubIds> {
  const user = currentUserName() ?? String(process.getuid!());
  const [uid, gid] = await Promise.all([readSubIds(subIdFile('uid')), readSubIds(subIdFile('gid'))]);
  return { user, uid, gid };
}

export function subidsCheck(ids: SubIds, root: boolean): Check {
  const show = (r: IdRange[]) => r.map((x) => `${ids.user}:${x.start}:${x.count}`).join(', ');
  if (root) return { id: 'subids', title: 'subordinate ids', status: 'info', found: 'not needed: running as root' };
  if (ids.uid.length && ids.gid.length)
    return { id: 'subids', title: 'subordinate ids', status: 'ok', found: `${subIdFile('uid')}: ${show(ids.uid)}; ${subIdFile('gid')}: ${show(ids.gid)}` };
  const missing = [ids.uid.length ? '' : subIdFile('uid'), ids.gid.length ? '' : subIdFile('gid')].filter(Boolean).join(' and ');
  return {
    id: 'subids',
    title: 'subordinate ids',
    status: 'warn',
    found: `no line for ${ids.user} in ${missing}`,
    cost: SINGLE_ID_COST,
    fix: `as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${ids.user}`,
  };
}

// How a helper gets its privilege: the setuid bit of a root-owned file, or file capabilities.
export interface Helper {
  name: 'newuidmap' | 'newgidmap';
  path?: string;
  setuidRoot: boolean;
  fileCaps?: bigint; // permitted set of security.capability
}

function fileCapabilities(file: string): bigint | undefined {
  let v: Buffer | null;
  try {
    v = loadAddon().lgetxattr(file, 'security.capability');
  } catch {
    return undefined;
  }
  if (!v || v.length < 12) return undefined;
  // vfs_cap_data: magic_etc, then {permitted, inheritable} for caps 0-31 and 32-63.
  const hi = v.length >= 20 ? BigInt(v.readUInt32LE(12)) : 0n;
  return (hi << 32n) | BigInt(v.readUInt32LE(4));
}

export function findHelpers(): Helper[] {
  return (['newuidmap', 'newgidmap'] as const).map((name) => {
    const p = findHelper(name);
    if (!p) return { name, setuidRoot: false };
    const st = fs.statSync(p);
    return { name, path: p, setuidRoot: st.uid === 0 && (st.mode & 0o4000) !== 0, fileCaps: fileCapabilities(p) };
  });
}

function privilegeOf(h: Helper): string {
  if (!h.path) return `${h.name} not found`;
  const cap = h.name === 'newuidmap' ? CAP_SETUID : CAP_SETGID;
  if (h.fileCaps !== undefined && has(h.fileCaps, cap)) return `${h.path} (file capability ${h.name === 'newuidmap' ? 'cap_setuid' : 'cap_setgid'})`;
  if (h.setuidRoot) return `${h.path} (setuid root)`;
  return `${h.path} (neither setuid nor file capabilities)`;
}

export function helpersCheck(helpers: Helper[], root: boolean): Check {
  const found = helpers.map(privilegeOf).join('; ');
  if (root) return { id: 'helpers', title: 'id map helpers', status: 'info', found: `not needed: running as root (${found})` };
  if (helpers.some((h) => !h.path))
    return { id: 'helpers', title: 'id map helpers', status: 'warn', found, cost: 'single-id mapping only', fix: 'install them: apt-get install uidmap (dnf install shadow-utils)' };
  return { id: 'helpers', title: 'id map helpers', status: 'ok', found };
}

// The process's own limits on what a helper may gain.
export function processPrivileges(): { bounding: bigint; noNewPrivs: boolean } {
  const status = readText('/proc/self/status') ?? '';
  const field = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(status)?.[1];
  return { bounding: BigInt(`0x${field('CapBnd') ?? '0'}`), noNewPrivs: field('NoNewPrivs') === '1' };
}

export interface MappingTrial {
  uidMap: IdMapEntry[];
  gidMap: IdMapEntry[];
  error?: { helper: string; message: string };
}

// Resolves to the helper's complaint, or undefined when it worked. The kernel
// may refuse to exec it at all (file capabilities beyond the bounding set):
// spawn then throws EPERM synchronously.
function run(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      execFile(file, args, { timeout: 10_000 }, (err, _out, stderr) => resolve(err ? String(stderr).trim() || err.message : undefined));
    } catch (err) {
      resolve(`cannot run ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  });
}

// A real trial: a child in a new user namespace that waits for its maps,
// newuidmap/newgidmap write the caller's ranges, the child is let go unrun.
export async function tryIdMapping(ids: SubIds, helpers: Helper[]): Promise<MappingTrial> {
  const addon = loadAddon();
  const uidMap = buildIdMap(process.getuid!(), ids.uid);
  const gidMap = buildIdMap(process.getgid!(), ids.gid);
  const child = addon.cloneUserns({ argv: ['/bin/true'], env: [], cwd: '/' });
  const args = (map: IdMapEntry[]) => [String(child.pid), ...map.flatMap((e) => [String(e.inside), String(e.outside), String(e.count)])];
  try {
    const [u, g] = helpers;
    const [uerr, gerr] = await Promise.all([run(u.path!, args(uidMap)), run(g.path!, args(gidMap))]);
    if (uerr) return { uidMap, gidMap, error: { helper: 'newuidmap', message: uerr } };
    if (gerr) return { uidMap, gidMap, error: { helper: 'newgidmap', message: gerr } };
    return { uidMap, gidMap };
  } finally {
    addon.releaseChild(child.syncFd, false);
    await addon.waitpid(child.pid);
  }
}

// Why the kernel refused a helper, from facts rather than its message: the
// helper's privilege source and what this process's bounding set allows.
export function mappingFix(helpers: Helper[], failed: string): string {
  const h = helpers.find((x) => x.name === failed)!;
  const cap = failed === 'newuidmap' ? CAP_SETUID : CAP_SETGID;
  const { bounding, noNewPrivs } = processPrivileges();
  const fileCapsFix =
    'give the helpers file capabilities instead of the setuid bit: chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap && setcap cap_setuid=ep /usr/bin/newuidmap && setcap cap_setgid=ep /usr/bin/newgidmap (img\'s image does this)';
  if (noNewPrivs)
    return 'no_new_privs is set on this process, so the helpers cannot gain privilege: drop it (Kubernetes: allowPrivilegeEscalation must not be false; docker: no --security-opt no-new-privileges)';
  if (!has(bounding, cap))
    return `this container's capability bounding set lacks ${cap === CAP_SETUID ? 'CAP_SETUID' : 'CAP_SETGID'}: keep it (docker: no --cap-drop of it; Kubernetes: capabilities.drop must not list it)`;
  const viaCaps = h.fileCaps !== undefined && has(h.fileCaps, cap);
  if (!viaCaps && h.setuidRoot && !has(bounding, CAP_SYS_ADMIN))
    return `a setuid-root ${failed} writes the map as root, for which the kernel wants CAP_SYS_ADMIN, absent from this container's bounding set (Docker's and Kubernetes' default): ${fileCapsFix}`;
  if (!viaCaps && !h.setuidRoot) return `${h.path} has neither the setuid bit nor file capabilities: ${fileCapsFix}`;
  return `check the lines for ${currentUserName() ?? process.getuid!()} in /etc/subuid and /etc/subgid`;
}

const FS_NAMES: Record<number, string> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x65735546: 'fuse',
  0x6969: 'nfs',
  0x2fc12fc1: 'zfs',
  0xf2f52010: 'f2fs',
  0x63677270: 'cgroup2',
};
export const fsName = (type: number) => FS_NAMES[type] ?? `0x${type.toString(16)}`;

export function cgroupCheck(): Check {
  let type = 0;
  try {
    type = fs.statfsSync('/sys/fs/cgroup').type;
  } catch {
    return { id: 'cgroups', title: 'cgroups', status: 'info', found: '/sys/fs/cgroup is not mounted: RUN steps run without resource limits' };
  }
  if (fsName(type) !== 'cgroup2') return { id: 'cgroups', title: 'cgroups', status: 'info', found: 'v1: nothing delegated to unprivileged users; RUN steps run without resource limits' };
  const own = /^0::(.*)$/m.exec(readText('/proc/self/cgroup') ?? '')?.[1] ?? '/';
  const dir = path.join('/sys/fs/cgroup', own);
  let delegated = false;
  try {
    fs.accessSync(path.join(dir, 'cgroup.procs'), fs.constants.W_OK);
    delegated = true;
  } catch {
    /* not ours */
  }
  const controllers = readText(path.join(dir, 'cgroup.controllers')) || 'none';
  return {
    id: 'cgroups',
    title: 'cgroups',
    status: 'info',
    found: `v2, ${own} ${delegated ? `delegated (controllers: ${controllers})` : 'not delegated'}; RUN steps run without resource limits`,
  };
}

// binfmt_misc handlers: which other architectures' RUN steps run here, emulated
// (exec/binfmt.ts finds a handler by its magic and wants the F flag).
const EMULATED = ['arm64', 'arm', 'amd64', '386', 'ppc64le', 's390x', 'riscv64'];

// Node's names for the host (x64, ia32) in OCI's (amd64, 386).
const hostArch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;

export function binfmtCheck(): Check {
  const base = { id: 'binfmt', title: 'binfmt_misc' };
  const results = EMULATED.filter((a) => a !== hostArch).map((a) => ({ arch: a, c: checkEmulation(a) }));
  if (results.every((r) => !r.c.ok && r.c.reason === 'unreadable')) {
    return { ...base, status: 'info', found: `not mounted at ${BINFMT_DIR}: RUN steps run this machine's architecture only (or the host's handlers, in a container)`, fix: emulationFix('arm64') };
  }
  const runs = results.flatMap((r) => (r.c.ok ? [`${r.arch} (${r.c.handler.name})`] : []));
  const noF = results.flatMap((r) => (!r.c.ok && r.c.reason === 'no-fix-binary' ? [r] : []));
  const found = runs.length ? `RUN emulated for ${runs.join(', ')}` : 'no emulation handlers: RUN steps run this machine\'s architecture only';
  if (noF.length) {
    const names = noF.map((r) => r.c.handler!.name);
    return {
      ...base,
      status: 'warn',
      found: `${found}; ${names.join(', ')} without the F flag`,
      cost: `RUN for ${noF.map((r) => r.arch).join(', ')} fails: the interpreter is not inside the build container`,
      fix: `as root: echo -1 > ${BINFMT_DIR}/NAME for each, then update-binfmts --enable NAME (qemu-user-static registers with F)`,
    };
  }
  return runs.length ? { ...base, status: 'info', found } : { ...base, status: 'info', found, fix: emulationFix('arm64') };
}

function nearestExisting(p: string): string {
  let dir = path.resolve(p);
  while (!fs.existsSync(dir) && dir !== '/') dir = path.dirname(dir);
  return dir;
}

function reflinkTrial(dir: string): Promise<boolean> {
  const a = path.join(dir, 'reflink-a');
  fs.writeFileSync(a, 'img');
  return new Promise((resolve) => execFile('cp', ['--reflink=always', a, path.join(dir, 'reflink-b')], (err) => resolve(!err)));
}

// The state dir's filesystem: room, d_type (overlayfs needs it), reflinks
// (cheap native copies); `fs` its type, which other rows' fixes depend on.
export async function stateCheck(stateDir: string): Promise<{ check: Check; fs?: string }> {
  const title = 'state dir';
  const base = nearestExisting(stateDir);
  let scratch: string;
  try {
    fs.accessSync(base, fs.constants.W_OK | fs.constants.X_OK);
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    scratch = fs.mkdtempSync(path.join(stateDir, '.doctor-'));
  } catch (err) {
    return {
      check: { id: 'state', title, status: 'fail', found: `${stateDir}: not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, cost: 'img cannot store anything', fix: `use a writable directory: --state DIR (or fix the permissions of ${base})` },
    };
  }
  try {
    const st = fs.statfsSync(stateDir);
    const free = st.bavail * st.bsize;
    fs.writeFileSync(path.join(scratch, 'f'), '');
    const dtype = loadAddon().direntType(scratch, 'f') !== 0;
    const reflink = await reflinkTrial(scratch);
    const type = fsName(st.type);
    const found = `${stateDir} on ${type}: ${bytesSize(free)} free, d_type ${dtype ? 'yes' : 'no'}, reflink ${reflink ? 'yes' : 'no'}`;
    if (!dtype)
      return { fs: type, check: { id: 'state', title, status: 'warn', found, cost: 'overlayfs refuses a filesystem without d_type: native backend (copies)', fix: 'put the state dir on ext4, btrfs or XFS made with ftype=1 (--state DIR)' } };
    if (free < 2 * 1024 ** 3)
      return { fs: type, check: { id: 'state', title, status: 'warn', found, cost: 'builds of large images may fail with a full disk', fix: 'free space, or --state on a larger filesystem' } };
    return { fs: type, check: { id: 'state', title, status: 'ok', found } };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

export function credentialsCheck(): Check {
  const title = 'registry credentials';
  let c: ReturnType<typeof configuredCredentials>;
  try {
    c = configuredCredentials();
  } catch (err) {
    return { id: 'credentials', title, status: 'warn', found: (err as Error).message, cost: 'pushes and pulls of private images fail', fix: 'fix or remove the file, then img login' };
  }
  const helpers = [...new Set([...Object.values(c.credHelpers), ...(c.credsStore ? [c.credsStore] : [])])];
  const missing = helpers.filter((h) => !findHelper(`docker-credential-${h}`));
  const parts = [
    c.registries.length ? `logins for ${c.registries.join(', ')}` : 'no logins',
    ...Object.entries(c.credHelpers).map(([reg, h]) => `${reg} via docker-credential-${h}`),
    ...(c.credsStore ? [`others via docker-credential-${c.credsStore}`] : []),
  ];
  const found = `${c.file}: ${parts.join('; ')}`;
  if (missing.length)
    return { id: 'credentials', title, status: 'warn', found, cost: `registries using ${missing.map((h) => `docker-credential-${h}`).join(', ')} get no credentials`, fix: 'install the helper, or remove it from config.json' };
  return { id: 'credentials', title, status: c.registries.length || helpers.length ? 'ok' : 'info', found };
}
