// img's version and the commit it was built from, read once so `img -v`,
// `img version` and the User-Agent agree. Files only, no git process.
//
// The package root is found by walking up to img's package.json: sources run
// from lib/util/ (tsx), compiled code from dist/lib/util/, the bundle from dist/.
// The single-file binary (scripts/build-sea.js) has no package.json beside it:
// esbuild substitutes IMG_BUNDLED_VERSION at bundle time.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

declare const IMG_BUNDLED_VERSION: string | undefined;

interface PackageInfo {
  root: string;
  version: string;
}

function findPackage(): PackageInfo | undefined {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'img' && pkg.version) return { root: dir, version: pkg.version };
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  return undefined;
}

const pkg = findPackage();

export const VERSION: string = typeof IMG_BUNDLED_VERSION === 'string' ? IMG_BUNDLED_VERSION : (pkg?.version ?? '0.0.0-dev');

// What scripts/prepack.js records in the npm package: the commit it was packed from.
export const BUILD_INFO_FILE = join('dist', 'build-info.json');

export interface BuildInfo {
  version: string;
  gitCommit: string;
}

// The git directory of a checkout at root: `.git` itself, or where a `.git`
// file points (`gitdir: …`, as in `git worktree` checkouts and submodules).
function gitDirOf(root: string): string | undefined {
  const dotGit = join(root, '.git');
  try {
    const text = readFileSync(dotGit, 'utf8');
    const m = /^gitdir: (.+)$/m.exec(text);
    if (!m) return undefined;
    return isAbsolute(m[1].trim()) ? m[1].trim() : resolve(root, m[1].trim());
  } catch (err) {
    // EISDIR: an ordinary checkout's .git directory.
    return (err as NodeJS.ErrnoException).code === 'EISDIR' ? dotGit : undefined;
  }
}

// HEAD's commit in the git directory: HEAD is a commit or a ref, and a
// worktree's refs live in the common directory (its `commondir` file), loose
// or in packed-refs.
function headCommit(gitDir: string): string | undefined {
  const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
  if (!head.startsWith('ref: ')) return head;
  const ref = head.slice(5);
  let common = gitDir;
  try {
    common = resolve(gitDir, readFileSync(join(gitDir, 'commondir'), 'utf8').trim());
  } catch {
    // not a worktree: refs are here
  }
  for (const dir of new Set([gitDir, common])) {
    try {
      return readFileSync(join(dir, ref), 'utf8').trim();
    } catch {
      // not a loose ref here
    }
  }
  try {
    const line = readFileSync(join(common, 'packed-refs'), 'utf8')
      .split('\n')
      .find((l) => l.endsWith(` ${ref}`));
    return line?.split(' ')[0];
  } catch {
    return undefined;
  }
}

// The commit this copy of img is: IMG_GIT_COMMIT (release builds), a git
// checkout's HEAD, else what the npm package recorded at pack time. 12 hex
// digits, or 'unknown'.
export function gitCommit(): string {
  if (process.env.IMG_GIT_COMMIT) return process.env.IMG_GIT_COMMIT;
  if (!pkg) return 'unknown';
  try {
    const gitDir = gitDirOf(pkg.root);
    const commit = gitDir && headCommit(gitDir);
    if (commit) return commit.slice(0, 12);
  } catch {
    // a damaged checkout: try the packed record
  }
  try {
    const info = JSON.parse(readFileSync(join(pkg.root, BUILD_INFO_FILE), 'utf8')) as Partial<BuildInfo>;
    if (info.gitCommit) return info.gitCommit.slice(0, 12);
  } catch {
    // not packed by scripts/prepack.js
  }
  return 'unknown';
}
