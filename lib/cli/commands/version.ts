// img version: the fields img prints (version, git hash, runtime, platform),
// plus whether the native addon loads and why not, what compresses layers, and
// how this host runs builds: the user namespace entry (lib/exec/entry.ts) and
// the snapshot backend, each with its reason. Reads files only; no git process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RegisterCommand } from './index';

export interface VersionInfo {
  version: string;
  gitCommit: string;
  nodeVersion: string;
  platform: string;
  addon: string;
  compression: string;
  namespace: string;
  mapping: string;
  proc: string;
  backend: string;
}

// The snapshot backend this state dir uses: -b when given, else the verdict `auto`
// cached the first time it mounted for real (lib/snapshot/open.ts). Reading the
// cache keeps `img version` free of the user-namespace hop.
export function backendInfo(stateDir: string, backend: string): string {
  if (backend !== 'auto') return backend;
  try {
    const cached = JSON.parse(fs.readFileSync(path.join(stateDir, 'snapshots', 'auto.json'), 'utf8')) as {
      backend?: string;
      reasons?: Record<string, string>;
    };
    const skipped = Object.entries(cached.reasons ?? {}).map(([b, why]) => `${b}: ${why}`);
    return `${cached.backend} (auto${skipped.length ? `; not ${skipped.join('; not ')}` : ''})`;
  } catch {
    return 'auto (decided by the first command that needs snapshots)';
  }
}

export function versionInfo(stateDir: string, backend = 'auto'): VersionInfo {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { VERSION, gitCommit } = require('../../util/version') as typeof import('../../util/version');
  const { hostPlatform, formatPlatform } = require('../../images/platform') as typeof import('../../images/platform');
  const { addonStatus, addonPath } = require('../../host/index') as typeof import('../../host/index');
  const { describeCodecs } = require('../../archive/codecs') as typeof import('../../archive/codecs');
  const { currentEntry } = require('../../exec/entry') as typeof import('../../exec/entry');
  const st = addonStatus();
  const e = currentEntry();
  return {
    version: `v${VERSION}`,
    gitCommit: gitCommit(),
    nodeVersion: process.version,
    platform: formatPlatform(hostPlatform()),
    addon: st.loaded ? `loaded (${addonPath()})` : `not loaded: ${st.error ?? 'unknown error'}`,
    compression: describeCodecs(),
    namespace:
      e.via === 'root' ? 'none needed (real root)' : e.via === 'none' ? 'not entered' : `entered by ${e.via}${e.launcherMs === undefined ? '' : ` in ${e.launcherMs.toFixed(1)} ms`}`,
    mapping: `${e.mapping} (${e.mappingReason})`,
    proc: `${e.proc} (${e.procReason})`,
    backend: backendInfo(stateDir, backend),
  };
}

export function formatVersion(v: VersionInfo): string {
  const rows: [string, string][] = [
    ['version', v.version],
    ['git hash', v.gitCommit],
    ['node version', v.nodeVersion],
    ['platform', v.platform],
    ['addon', v.addon],
    ['compression', v.compression],
    ['namespace', v.namespace],
    ['id mapping', v.mapping],
    ['/proc', v.proc],
    ['backend', v.backend],
  ];
  return `img:\n${rows.map(([k, val]) => ` ${k.padEnd(12)}: ${val}`).join('\n')}\n`;
}

// What `--format` sees: docker's `{{.Client.Version}}`, `{{.Client.Os}}`… (docker version's
// Client fields that mean something here; there is no Server), and img's own rows by name.
// Both are Go structs to the template (goStruct): a misspelt field is an error, as in docker.
export function versionData(v: VersionInfo, goStruct: <T extends object>(o: T, json?: unknown) => T): object {
  const [os, arch, variant] = v.platform.split('/');
  const client = { Version: v.version.replace(/^v/, ''), GitCommit: v.gitCommit, NodeVersion: v.nodeVersion, Os: os, Arch: variant ? `${arch}/${variant}` : arch, Platform: v.platform };
  const own = Object.fromEntries(Object.entries(v).map(([k, val]) => [k[0].toUpperCase() + k.slice(1), val]));
  const clientJson = { ...client }; // json prints its fields in this order, not sorted
  return goStruct({ Client: goStruct(client, clientJson), ...own }, { Client: clientJson, ...own });
}

export const register: RegisterCommand = (program, globals) =>
  program
    .command('version')
    .description('Show the version information.')
    .usage('[OPTIONS]')
    .option('-f, --format <string>', "Format output using a custom template: 'json' or a Go template ({{.Client.Version}})")
    .action((opts: { format?: string }) => {
      const g = globals();
      const info = versionInfo(g.state, g.backend);
      if (!opts.format) return void process.stdout.write(formatVersion(info));
      /* eslint-disable-next-line @typescript-eslint/no-require-imports */
      const { goJson, goStruct, parseFormat } = require('../../util/template') as typeof import('../../util/template');
      const data = versionData(info, goStruct);
      process.stdout.write(`${opts.format === 'json' ? goJson(data) : parseFormat(opts.format).template.execute(data)}\n`);
    });
