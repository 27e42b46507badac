// The single binary (npm run build:sea → build/sea/img) for tests that need
// it, built at most once per source state: a stamp in build/sea records a hash
// of what goes into it, and a lock keeps test files running at the same time
// from writing build/sea together.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './cli';

export const SEA_BINARY = path.join(REPO, 'build', 'sea', 'img');

function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(p).update(fs.readFileSync(p));
    }
  };
  walk(path.join(REPO, 'lib'));
  walk(path.join(REPO, 'scripts'));
  walk(path.join(REPO, 'build', 'Release'));
  h.update(fs.readFileSync(path.join(REPO, 'package.json')));
  return h.digest('hex');
}

export function buildSea(): string {
  const stamp = path.join(REPO, 'build', 'sea', '.source-hash');
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  const script = `
    exec 9>"$1.lock"; flock 9
    [ -x "$2" ] && [ "$(cat "$1" 2>/dev/null)" = "$3" ] && exit 0
    node scripts/build-sea.js >/dev/null && echo "$3" >"$1"`;
  execFileSync('bash', ['-c', script, 'build-sea', stamp, SEA_BINARY, sourceHash()], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  return SEA_BINARY;
}
