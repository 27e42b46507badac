// Read once from package.json so `img -v`, `img version` and the User-Agent agree.
// Sources run from lib/util/ (tsx) and compiled code from dist/lib/util/, hence two candidates.
// The single-file binary (scripts/build-sea.js) has no package.json beside it:
// esbuild substitutes IMG_BUNDLED_VERSION at bundle time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

declare const IMG_BUNDLED_VERSION: string | undefined;

function readVersion(): string {
  if (typeof IMG_BUNDLED_VERSION === 'string') return IMG_BUNDLED_VERSION;
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, candidate), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'img' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-dev';
}
export const VERSION: string = readVersion();
