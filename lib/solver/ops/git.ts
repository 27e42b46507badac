// The git source op (ADD git@…, a git URL as context): resolves the ref to a
// commit with `git ls-remote` while the key is computed, and checks that commit
// out (shallow) into a snapshot. Its cache key is the commit plus the subdir
// and whether .git is kept.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { GitSourceVertex } from '../../graph/types';
import { ContentError, HostError, ImgError, isErrno, NotFoundError } from '../../util/errors';
import type { Executor, KeyContext, RunContext } from '../types';
import type { OpEnv } from './shared';

export function gitOp(env: OpEnv): Executor<GitSourceVertex> {
  return {
    async contentKey(v, ctx) {
      const sha = await resolveCommit(v, ctx);
      return `git:${sha}:${v.subdir ?? ''}:${v.keepGitDir ? 1 : 0}`;
    },
    async run(v, ctx) {
      const snapshot = await env.produce(null, `git ${v.remote}`, ctx, (root) => checkout(v, root, ctx));
      return { snapshot, layers: [{ snapshot }] };
    },
  };
}

function runGit(args: string[], opts: { cwd?: string; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, signal: opts.signal, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      if (isErrno(e, 'ENOENT')) {
        reject(new HostError('cannot use a git source: the `git` program is not installed', { hint: 'install git (apt-get install git)' }));
      } else reject(e);
    });
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new ImgError(`git ${args[0]} failed: ${err.trim().split('\n').pop() ?? ''}`, { hint: 'check the repository URL and ref' })),
    );
  });
}

async function resolveCommit(v: GitSourceVertex, ctx: KeyContext): Promise<string> {
  // ADD --checksum of a git source is a commit (or annotated tag) hash or a prefix of one,
  // checked as BuildKit's git source does, in its words.
  const want = v.checksum?.toLowerCase();
  if (v.checksum !== undefined && !/^[a-fA-F0-9]+$/.test(v.checksum)) {
    throw new ImgError(`invalid checksum ${v.checksum} for Git URL, expected hex commit hash`, { hint: 'give --checksum the commit hash the ref must resolve to' });
  }
  const mismatch = (got: string) =>
    new ContentError(`expected checksum to match ${v.checksum}, got ${got}`, { hint: `the ref of ${v.remote} moved, or --checksum is wrong` });
  if (v.ref && /^[0-9a-f]{40}$/.test(v.ref)) {
    if (want !== undefined && !v.ref.startsWith(want)) throw mismatch(v.ref);
    return v.ref;
  }
  const what = `resolve ${v.remote}${v.ref ? '#' + v.ref : ''}`;
  ctx.progress.status('resolve', { name: what });
  // `v1^{}` too: ls-remote lists an annotated tag's peeled commit only when asked by that name.
  const out = await runGit(['ls-remote', v.remote, ...(v.ref ? [v.ref, `${v.ref}^{}`] : ['HEAD'])], { signal: ctx.signal });
  const lines = out.split('\n').filter((l) => l.trim()).map((l) => l.split(/\s+/));
  const first = lines[0];
  if (!first) throw new NotFoundError(`repository does not contain ref ${v.ref ?? 'HEAD'}`, { hint: `check the branch or tag name in ${v.remote}` });
  // An annotated tag is listed as the tag object and, peeled (`^{}`), the commit it tags.
  const peeled = lines.find((l) => l[1] === `${first[1]}^{}`);
  const commit = peeled ? peeled[0] : first[0];
  if (want !== undefined && !commit.startsWith(want) && !first[0].startsWith(want)) {
    throw mismatch(peeled ? `${first[0]} or ${commit}` : commit);
  }
  ctx.progress.status('resolve', { name: what, done: true });
  return commit;
}

async function checkout(v: GitSourceVertex, root: string, ctx: RunContext): Promise<void> {
  const work = path.join(root, '.img-git-checkout');
  await runGit(['init', '-q', work], { signal: ctx.signal });
  await runGit(['-C', work, 'remote', 'add', 'origin', v.remote]);
  await runGit(['-C', work, 'fetch', '-q', '--depth', '1', 'origin', v.ref || 'HEAD'], { signal: ctx.signal });
  await runGit(['-C', work, 'checkout', '-q', 'FETCH_HEAD']);
  if (!v.keepGitDir) await fsp.rm(path.join(work, '.git'), { recursive: true, force: true });
  const from = v.subdir ? path.join(work, path.posix.normalize('/' + v.subdir)) : work;
  for (const name of await fsp.readdir(from)) {
    if (from === work && name === '.img-git-checkout') continue;
    await fsp.rename(path.join(from, name), path.join(root, name));
  }
  await fsp.rm(work, { recursive: true, force: true });
}
