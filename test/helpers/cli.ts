// Run the img CLI from source (tsx) the way a user would, capturing output.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI_MAIN = path.join(REPO, 'lib', 'cli', 'main.ts');
// img-launch, the namespace entry bin/img starts img through (built with the addon).
export const LAUNCHER = path.join(REPO, 'build', 'Release', 'img-launch');

// `program` (node and its arguments up to the script) run as img: through
// img-launch like bin/img when it is built, else directly (img then
// re-executes itself when a command needs the user namespace).
export function launchArgv(program: string[], args: string[]): string[] {
  if (!fs.existsSync(LAUNCHER)) return [...program, ...args];
  return [LAUNCHER, 'img', String(program.length), ...program, ...args];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  cwd?: string;
  // Run as this unprivileged user (via runuser) when the test process is root.
  user?: string;
}

export function imgArgv(args: string[]): string[] {
  return launchArgv([process.execPath, '--import', 'tsx', CLI_MAIN], args);
}

export function runImg(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  let argv = imgArgv(args);
  if (opts.user && process.getuid?.() === 0) argv = ['runuser', '-u', opts.user, '--', ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
