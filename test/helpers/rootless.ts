// Runs img (or a TypeScript script) as an unprivileged user, the way the
// rootless paths are meant to be used: as that user via runuser when the test
// process is root, directly when it is already unprivileged. Each run gets a
// HOME and XDG_RUNTIME_DIR the user owns; tempDir() makes state/output dirs
// the user owns. A test skips (with the reason) only when no unprivileged user
// exists at all.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI_MAIN, REPO, launchArgv } from './cli';

export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
  // The first subordinate uid/gid (inside id 1 maps to it), when configured.
  subuidStart?: number;
  subgidStart?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const isRoot = process.getuid?.() === 0;
// tsx by absolute path: `--import tsx` resolves from the cwd, and tests run
// img from other directories (unpack's default ./rootfs).
export const TSX = path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs');
let cachedUser: RootlessUser | null | undefined;
let skipReason = '';

function subStart(file: string, name: string, uid: number): number | undefined {
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const [owner, start] = line.trim().split(':');
      if (owner === name || owner === String(uid)) return Number(start);
    }
  } catch {
    /* none */
  }
  return undefined;
}

// The user rootless tests run as, or null (see skipMessage()).
export function rootlessUser(): RootlessUser | null {
  if (cachedUser !== undefined) return cachedUser;
  if (!isRoot) {
    const info = os.userInfo();
    cachedUser = {
      name: info.username,
      uid: info.uid,
      gid: info.gid,
      subuidStart: subStart('/etc/subuid', info.username, info.uid),
      subgidStart: subStart('/etc/subgid', info.username, info.uid),
    };
    return cachedUser;
  }
  const name = process.env.IMG_TEST_USER || 'imgtest';
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    cachedUser = { name, uid, gid, subuidStart: subStart('/etc/subuid', name, uid), subgidStart: subStart('/etc/subgid', name, uid) };
  } catch {
    skipReason = `no unprivileged test user "${name}" (create it as .ci/setup-host does, or set IMG_TEST_USER)`;
    cachedUser = null;
  }
  return cachedUser;
}

// node:test's `skip` option value: false when a rootless user exists, else the reason.
export function skipUnlessRootless(): false | string {
  return rootlessUser() ? false : skipReason || 'no unprivileged user';
}

// A fresh directory owned by the rootless user (removed by cleanup()).
export function tempDir(prefix = 'img-rootless-'): string {
  const u = rootlessUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  if (u && isRoot) fs.chownSync(dir, u.uid, u.gid);
  return dir;
}

// Removes a directory the rootless user filled (files owned by its
// subordinate ids need root or the user's namespace to delete).
export async function cleanup(dir: string): Promise<void> {
  if (isRoot) {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  // Unprivileged: delete from inside the user namespace, where subordinate ids are ours.
  await runAsUser(['unshare', '--user', '--map-auto', '--map-root-user', 'rm', '-rf', dir]).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
}

function userEnv(u: RootlessUser, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const home = isRoot ? path.join(os.tmpdir(), `img-test-home-${u.uid}`) : (process.env.HOME ?? os.tmpdir());
  const xdg = isRoot ? path.join(os.tmpdir(), `img-test-xdg-${u.uid}`) : (process.env.XDG_RUNTIME_DIR ?? path.join(os.tmpdir(), `img-test-xdg-${u.uid}`));
  for (const [d, mode] of [
    [home, 0o755],
    [xdg, 0o700],
  ] as const) {
    fs.mkdirSync(d, { recursive: true, mode });
    if (isRoot) fs.chownSync(d, u.uid, u.gid);
  }
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    USER: u.name,
    LOGNAME: u.name,
    XDG_RUNTIME_DIR: xdg,
    TMPDIR: os.tmpdir(),
    IMG_TEST: '1',
  };
  for (const k of ['IMG_DEBUG', 'IMG_ADDON_PATH', 'NODE_OPTIONS', 'LANG']) if (process.env[k]) base[k] = process.env[k];
  return { ...base, ...extra };
}

// Runs argv as the rootless user with a clean environment (plus `env`).
export function runAsUser(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const u = rootlessUser();
  if (!u) return Promise.reject(new Error(skipReason));
  const env = userEnv(u, opts.env ?? {});
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const full = isRoot ? ['runuser', '-u', u.name, '--', 'env', '-i', ...envArgs, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), {
      cwd: opts.cwd ?? REPO,
      env: isRoot ? process.env : { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout takes down the whole tree
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
        }, opts.timeoutMs)
      : null;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 2),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    // A command that exits without reading stdin makes the write fail with EPIPE: not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

// `img ARGS` as the rootless user.
export function runImgRootless(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runAsUser(launchArgv([process.execPath, '--import', TSX, CLI_MAIN], args), opts);
}

// A TypeScript script (path relative to the repo or absolute) as the rootless user.
export function runScriptRootless(
  script: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return runAsUser([process.execPath, '--import', TSX, path.resolve(REPO, script), ...args], opts);
}

// Host owner of a path (stat as root sees it).
export function hostOwner(p: string): { uid: number; gid: number } {
  const st = fs.lstatSync(p);
  return { uid: st.uid, gid: st.gid };
}

// Starts argv as the rootless user without waiting (stdio piped); the caller
// ends it (e.g. by closing stdin) and awaits `done`.
export function spawnAsUser(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): { child: import('node:child_process').ChildProcess; done: Promise<number> } {
  const u = rootlessUser();
  if (!u) throw new Error(skipReason);
  const env = userEnv(u, opts.env ?? {});
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const full = isRoot ? ['runuser', '-u', u.name, '--', 'env', '-i', ...envArgs, ...argv] : argv;
  const child = spawn(full[0], full.slice(1), { cwd: opts.cwd ?? REPO, env: isRoot ? process.env : { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  return { child, done };
}

// Waits until the child prints `marker` on stdout.
export function waitForOutput(child: import('node:child_process').ChildProcess, marker: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${marker}; stderr: ${err}`)), timeoutMs);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      if (!out.includes(marker)) reject(new Error(`exited before ${marker}; stderr: ${err}`));
    });
  });
}
