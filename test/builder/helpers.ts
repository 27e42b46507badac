// Shared helpers of the img build end-to-end tests (run as the unprivileged user).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imgArgv } from '../helpers/cli';
import { rootlessUser, runAsUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import { makeBusyboxImage } from '../fixtures/images';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import type { ImageConfig, Manifest } from '../../lib/images/types';

export const skip = skipUnlessRootless();

// All descendants of `root` (by /proc parent links).
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      /* exited */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [pid, pp] of parent) if (pp === p) {
      out.push(pid);
      walk(pid);
    }
  };
  walk(root);
  return out;
}

export interface Env {
  root: string;
  state: string;
  ctx: string;
}

export async function setup(files: Record<string, string>): Promise<Env> {
  const root = tempDir('img-build-e2e-');
  const state = path.join(root, 'state');
  const ctx = path.join(root, 'ctx');
  const img = await makeBusyboxImage();
  await img.writeToStore(state, 'busybox:latest');
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(ctx, name)), { recursive: true });
    fs.writeFileSync(path.join(ctx, name), data);
  }
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, root]);
  return { root, state, ctx };
}

export function build(e: Env, args: string[], opts: { input?: string } = {}) {
  const argv = ['-s', e.state, 'build', '--progress', 'plain', ...args];
  if (opts.input !== undefined) return runAsUser(imgArgv(argv), { input: opts.input });
  return runImgRootless(argv);
}

export async function storedConfig(e: Env, name: string): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const rec = await new ImageStore(e.state).get(name);
  assert.ok(rec, `${name} is in the image store`);
  const content = new ContentStore(e.state);
  const manifest = await content.readJson<Manifest>(rec.target.digest);
  return { manifest, config: await content.readJson<ImageConfig>(manifest.config.digest) };
}

// "#N <name>" header → the state lines that follow for that vertex.
export function stepStates(stderr: string): Map<string, string> {
  const names = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [, n, rest] = m;
    if (!names.has(n)) names.set(n, rest);
    else if (rest === 'CACHED' || rest.startsWith('DONE') || rest.startsWith('ERROR')) out.set(names.get(n)!, rest.split(' ')[0]);
  }
  return out;
}

export function steps(states: Map<string, string>): [string, string][] {
  return [...states].filter(([n]) => /^\[/.test(n) && !n.startsWith('[internal]'));
}

