// The only module that loads the native addon (addon/*.cc → build/Release/img_addon.node,
// or the package's prebuilt for this platform: prebuilds/linux-x64/img_addon.node).
// Everything else imports from here: the addon's syscall-shaped functions plus
// the small policies around them (lock files). It sits below every engine room
// and imports none of them: diagnostics that add policy to the probe (subordinate
// ids, uidmap helpers, trials) live in lib/doctor.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Socket } from 'node:net';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { HostError, LockBusyError } from '../util/errors';
import { userCacheDir } from '../util/fsutil';
import { debug } from '../util/log';
import type { NativeAddon } from './native';

export type { NativeAddon, HostProbe, NativeCodecStream, CodecStreamKind, NativeSha256 } from './native';
export { MS, MNT_DETACH } from './native';

const ADDON_NAME = 'img_addon.node';
// A source build (npm run build:addon, or scripts/install.js when no prebuilt fits).
const SOURCE_BUILD_DIR = path.join('build', 'Release');
// What the npm package carries (scripts/prebuild.js): one directory per platform and architecture.
const PREBUILT_DIR = path.join('prebuilds', `${process.platform}-${process.arch}`);

let cached: NativeAddon | undefined;
let loadError: string | undefined;

// The package root holds package.json; from lib/host (tsx) it is two levels
// up, from dist/lib/host (compiled) three.
function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
}

// The single-file binary (scripts/build-sea.js) carries the addon as a SEA
// asset; `process.env.IMG_SEA` is replaced by "1" at bundle time there.
// node:sea is required, not imported: it arrived in Node 20.12 and img runs on
// any Node 20, where a static import would fail to load this module.
interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}
function seaModule(): SeaModule | undefined {
  if (process.env.IMG_SEA !== '1') return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('node:sea') as SeaModule;
  } catch {
    return undefined;
  }
}

export function isSea(): boolean {
  return seaModule()?.isSea() ?? false;
}

// The command line that runs this process again. A single-file binary (SEA)
// has argv [binary, binary, ...args] and applies its own execArgv.
export function selfArgv(): string[] {
  if (isSea()) return [process.execPath, ...process.argv.slice(2)];
  return [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
}

// An environment as execve wants it: "KEY=value" strings.
export function envList(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
}

let chosenAddon: string | undefined;

// The addon file this process loads: IMG_ADDON_PATH, the SEA's, else a source
// build on this machine before the prebuilt for this platform and architecture
// (scripts/install.js built from source only because the prebuilt did not load
// here). glibc is not asked at every start (process.report costs milliseconds):
// install.js loaded the prebuilt before keeping it, and loadAddon's error says
// what a prebuilt needs when it does not load.
export function addonPath(): string {
  if (process.env.IMG_ADDON_PATH) return path.resolve(process.env.IMG_ADDON_PATH);
  if (isSea()) return seaAddonFile();
  if (chosenAddon) return chosenAddon;
  const root = packageRoot();
  const source = path.join(root, SOURCE_BUILD_DIR, ADDON_NAME);
  const prebuilt = path.join(root, PREBUILT_DIR, ADDON_NAME);
  chosenAddon = !fs.existsSync(source) && fs.existsSync(prebuilt) ? prebuilt : source;
  return chosenAddon;
}

// What a prebuilt needs from the system, from its prebuild.json (scripts/prebuild.js).
function prebuiltNeeds(file: string): string | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(path.dirname(file), 'prebuild.json'), 'utf8')) as { glibc?: string; glibcxx?: string };
    return `glibc ${info.glibc} or later and libstdc++ with GLIBCXX_${info.glibcxx}`;
  } catch {
    return undefined;
  }
}

// Where the SEA's embedded files (the addon, img-launch) are unpacked: a
// private cache dir, one file per content hash, written atomically so
// concurrent img processes agree.
function seaAssetFile(key: string, name: (hash: string) => string): string {
  const bytes = Buffer.from(seaModule()!.getAsset(key));
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const dir = userCacheDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, name(hash));
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, bytes, { mode: 0o755 });
    fs.renameSync(tmp, file);
  }
  return file;
}

function seaAddonFile(): string {
  return seaAssetFile('img_addon.node', (hash) => `addon-${hash}.node`);
}

// img-launch (addon/launcher/img-launch.c), the namespace entry that runs
// before Node: beside the addon, or unpacked from the single binary.
// undefined when it was not built (an addon built before it existed);
// IMG_LAUNCHER names another one, or none when empty.
export function launcherPath(): string | undefined {
  if (process.env.IMG_LAUNCHER !== undefined) return process.env.IMG_LAUNCHER || undefined;
  try {
    const file = isSea() ? seaAssetFile('img-launch', (hash) => `img-launch-${hash}`) : path.join(path.dirname(addonPath()), 'img-launch');
    fs.accessSync(file, fs.constants.X_OK);
    return file;
  } catch {
    return undefined;
  }
}

// Loads the addon once. Throws a HostError saying how to build it when absent.
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  let file = '(unknown)';
  try {
    file = addonPath();
    // process.dlopen rather than require: a bundled or SEA require cannot load .node files.
    const mod = { exports: {} as NativeAddon };
    process.dlopen(mod, file);
    cached = mod.exports;
    loadError = undefined;
    return cached;
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0];
    const root = packageRoot();
    const needs = prebuiltNeeds(file);
    const rebuild = `build it from source with \`IMG_BUILD_FROM_SOURCE=1 npm rebuild img\` (in ${root}: \`npm run build:addon\`); it needs cmake, make, g++ and zlib headers`;
    throw new HostError(`native addon is missing or does not load: ${file}`, {
      hint: needs ? `this prebuilt addon needs ${needs}; ${rebuild}` : rebuild,
      detail: loadError,
      cause: err,
    });
  }
}

// For `img version`: whether the addon loads, and why not.
export function addonStatus(): { loaded: boolean; error?: string } {
  try {
    loadAddon();
    return { loaded: true };
  } catch {
    return { loaded: false, error: loadError };
  }
}

// A lock that could not be taken without waiting (lockFile with wait: false): LockBusyError.
export { LockBusyError };

export interface FileLock {
  release(): Promise<void>;
}

// Advisory flock(2) on `file` (created with mode 0644). The fd stays open
// until release(); the kernel drops the lock if the process dies. Locks are
// per open file, so two lockFile calls in one process also exclude each other.
// `create: false` locks only an existing file (read-only; ENOENT otherwise): for
// asking whether another process holds a file without leaving one behind.
export async function lockFile(
  file: string,
  mode: 'shared' | 'exclusive',
  opts: { wait?: boolean; create?: boolean } = {},
): Promise<FileLock> {
  const addon = loadAddon();
  const flags = opts.create === false ? fs.constants.O_RDONLY : fs.constants.O_RDWR | fs.constants.O_CREAT;
  const fh = await fs.promises.open(file, flags, 0o644);
  try {
    await flockSoon(addon, fh.fd, mode, opts.wait ?? true);
  } catch (err) {
    await fh.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') throw new LockBusyError(file, mode);
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      // Closing the only fd of this open file drops the lock.
      await fh.close();
    },
  };
}

// flock, inline when the lock is free (the usual case); only a wait goes to the addon's
// thread, one started per call (a step takes two locks: ~0.1 ms each to start a thread,
// several on a busy machine).
export async function flockSoon(addon: NativeAddon, fd: number, mode: 'shared' | 'exclusive', wait: boolean): Promise<boolean> {
  try {
    return await addon.flock(fd, mode, false);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!wait || (code !== 'EAGAIN' && code !== 'EWOULDBLOCK')) throw err;
    return addon.flock(fd, mode, true);
  }
}

// A child started by spawnLight: its pid, its output, its end.
export interface LightChild {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  // The exit code, or 128+signal.
  exited: Promise<number>;
}

// Starts a program with piped stdout/stderr (stdin /dev/null) through the addon's
// posix_spawn, which costs the same whatever img's size; child_process forks the
// whole Node process first (10-40 ms for a build's img, per RUN step, on the main
// thread). undefined when the addon predates spawn: the caller uses child_process.
// Throws an ErrnoError (ENOENT, EACCES) when the program cannot start.
export function spawnLight(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): LightChild | undefined {
  const addon = loadAddon();
  if (!addon.spawn || !addon.pipe) return undefined;
  const [outR, outW] = addon.pipe();
  const [errR, errW] = addon.pipe();
  let pid: number;
  try {
    pid = addon.spawn(file, [file, ...args], envList(env), [-1, outW, errW]);
  } catch (err) {
    for (const fd of [outR, errR]) fs.closeSync(fd);
    throw err;
  } finally {
    // The child has its copies; ours would keep the pipes open after it exits.
    for (const fd of [outW, errW]) fs.closeSync(fd);
  }
  const reader = (fd: number): Readable => new Socket({ fd, readable: true, writable: false });
  return { pid, stdout: reader(outR), stderr: reader(errR), exited: addon.waitpid(pid) };
}

// dev_t as glibc's makedev() builds it (the st_rdev encoding mknod expects).
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 0x1000 * 0x100000000;
}

/**
 * Marks `dir` as the top of directory trees (chattr +T), so that ext4 puts each directory
 * made in it where the filesystem has the most room instead of next to its siblings.
 * Why: an ext4 without a journal skips every free inode of a block group deleted in the
 * last 60 s (360 s while its inode table block is dirty; kernel 6.x) when it allocates one,
 * and starts that walk from the group's first inode for every file. Snapshot trees made
 * and removed in the same group (a cold build after an old store was removed; another
 * build's cleanup) then cost up to ~0.5 ms per new file, 15-25x the normal cost.
 * Only a placement hint: where it cannot be set (another filesystem, an older addon) it
 * says why in the debug log and nothing else changes.
 */
export function spreadNewDirectories(dir: string): void {
  try {
    const addon = loadAddon();
    if (typeof addon.setTopDirFlag === 'function') addon.setTopDirFlag(dir);
  } catch (err) {
    debug(`${dir}: directories made in it are placed as the filesystem chooses (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
