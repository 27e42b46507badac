// img version: the fields img prints (version, git hash, runtime, platform),
// plus whether the native addon loads and why not. Reads files only; no git process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RegisterCommand } from './index';

export interface VersionInfo {
  version: string;
  gitCommit: string;
  nodeVersion: string;
  platform: string;
  addon: string;
}

function packageRoot(): string | null {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'lib'))) return dir;
    dir = path.dirname(dir);
  }
  return null;
}

// HEAD's commit from .git (loose ref or packed-refs); IMG_GIT_COMMIT overrides (release builds).
export function gitCommit(): string {
  if (process.env.IMG_GIT_COMMIT) return process.env.IMG_GIT_COMMIT;
  const root = packageRoot();
  if (!root) return 'unknown';
  try {
    const gitDir = path.join(root, '.git');
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    const ref = head.slice(5);
    try {
      return fs.readFileSync(path.join(gitDir, ref), 'utf8').trim().slice(0, 12);
    } catch {
      const packed = fs.readFileSync(path.join(gitDir, 'packed-refs'), 'utf8');
      const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
      return line ? line.slice(0, 12) : 'unknown';
    }
  } catch {
    return 'unknown';
  }
}

export function versionInfo(): VersionInfo {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { VERSION } = require('../../version') as typeof import('../../version');
  const { hostPlatform, formatPlatform } = require('../../images/platform') as typeof import('../../images/platform');
  const { addonStatus, addonPath } = require('../../host/index') as typeof import('../../host/index');
  const st = addonStatus();
  return {
    version: `v${VERSION}`,
    gitCommit: gitCommit(),
    nodeVersion: process.version,
    platform: formatPlatform(hostPlatform()),
    addon: st.loaded ? `loaded (${addonPath()})` : `not loaded: ${st.error ?? 'unknown error'}`,
  };
}

export function formatVersion(v: VersionInfo): string {
  const rows: [string, string][] = [
    ['version', v.version],
    ['git hash', v.gitCommit],
    ['node version', v.nodeVersion],
    ['platform', v.platform],
    ['addon', v.addon],
  ];
  return `img:\n${rows.map(([k, val]) => ` ${k.padEnd(12)}: ${val}`).join('\n')}\n`;
}

export const register: RegisterCommand = (program) =>
  program
    .command('version')
    .description('Show the version information.')
    .usage('[OPTIONS]')
    .action(() => {
      process.stdout.write(formatVersion(versionInfo()));
    });
