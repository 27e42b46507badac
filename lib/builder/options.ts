// `img build` inputs as one value (BuildOptions), and parsers for the
// docker/buildx flag syntaxes (-o CSV, --secret, --build-context, --add-host).
import { ImgError } from '../util/errors';
import type { Platform } from '../images/types';
import type { ProgressMode } from '../progress/index';

export type OutputSpec =
  | { type: 'image'; names: string[]; push?: boolean }
  | { type: 'docker'; dest?: string; names: string[] }
  | { type: 'oci'; dest?: string; names: string[] }
  | { type: 'tar'; dest?: string }
  | { type: 'local'; dest: string };

export interface SecretSpec {
  id: string;
  src?: string; // file
  env?: string; // environment variable
}

export interface SshSpec {
  id: string; // "default" or a name
  paths: string[]; // agent socket or key files; empty = $SSH_AUTH_SOCK
}

export type BuildContextSpec = { name: string; kind: 'local'; path: string } | { name: string; kind: 'image'; ref: string };

export interface BuildOptions {
  stateDir: string;
  backend: 'auto' | 'native' | 'overlayfs' | 'fuse-overlayfs';
  context: string; // PATH | URL | '-'
  file?: string; // -f; '-' = stdin
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  noCache: boolean;
  target?: string;
  platforms: Platform[];
  tags: string[];
  outputs: OutputSpec[];
  progress: ProgressMode;
  noConsole: boolean;
  quiet: boolean;
  iidfile?: string;
  metadataFile?: string;
  secrets: SecretSpec[];
  ssh: SshSpec[];
  network: 'default' | 'none' | 'host';
  pull: boolean;
  addHosts: { host: string; ip: string }[];
  buildContexts: BuildContextSpec[];
  sourceDateEpoch?: number;
  concurrency?: number;
}

// buildx CSV: key=value pairs separated by commas; values may be quoted.
export function parseCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function kv(field: string, flag: string, hint: string): [string, string] {
  const i = field.indexOf('=');
  if (i <= 0) throw new ImgError(`invalid ${flag} field "${field}": expected key=value`, { hint });
  return [field.slice(0, i).trim().toLowerCase(), field.slice(i + 1)];
}

const OUTPUT_HINT = 'use e.g. -o type=tar,dest=rootfs.tar | type=docker,dest=image.tar | type=oci,dest=image.tar | type=local,dest=dir | type=image,name=NAME';

export function parseOutput(spec: string, tags: string[]): OutputSpec {
  // buildx shorthands: "-o -" is a tar on stdout, "-o DIR" a local directory.
  if (spec === '-') return { type: 'tar' };
  if (!spec.includes('=')) return { type: 'local', dest: spec };
  const fields: Record<string, string> = {};
  for (const f of parseCsv(spec)) {
    const [k, v] = kv(f, '--output', OUTPUT_HINT);
    fields[k] = v;
  }
  const type = fields.type ?? 'local';
  const names = (fields.name ?? '').split(',').filter(Boolean);
  const dest = fields.dest === '-' ? undefined : fields.dest;
  switch (type) {
    case 'image':
    case 'registry':
      if (type === 'registry' || fields.push === 'true') {
        throw new ImgError(`--output type=${type}${type === 'image' ? ',push=true' : ''} is not supported yet`, {
          hint: 'build with -t NAME, then run `img push NAME`',
        });
      }
      return { type: 'image', names: names.length ? names : tags };
    case 'docker':
    case 'oci':
      return { type, dest, names: names.length ? names : tags };
    case 'tar':
      return { type: 'tar', dest };
    case 'local':
      if (!fields.dest) throw new ImgError('--output type=local needs dest=DIR', { hint: 'use -o type=local,dest=./out' });
      return { type: 'local', dest: fields.dest };
    default:
      throw new ImgError(`unknown --output type "${type}"`, { hint: OUTPUT_HINT });
  }
}

const SECRET_HINT = 'use --secret id=NAME,src=FILE or --secret id=NAME,env=VAR';

export function parseSecret(spec: string): SecretSpec {
  const s: Partial<SecretSpec> = {};
  let type = '';
  for (const f of parseCsv(spec)) {
    const [k, v] = kv(f, '--secret', SECRET_HINT);
    if (k === 'id') s.id = v;
    else if (k === 'src' || k === 'source') s.src = v;
    else if (k === 'env') s.env = v;
    else if (k === 'type') type = v;
    else throw new ImgError(`unknown --secret field "${k}"`, { hint: SECRET_HINT });
  }
  if (!s.id) throw new ImgError(`--secret ${spec} has no id`, { hint: SECRET_HINT });
  if (!s.src && !s.env) {
    // buildx: without src/env, the secret is the env var (type=env) or file named by the id.
    if (type === 'file') s.src = s.id;
    else s.env = s.id;
  }
  if (type === 'env' && s.src && !s.env) {
    s.env = s.src;
    delete s.src;
  }
  return s as SecretSpec;
}

export function parseSsh(spec: string): SshSpec {
  const i = spec.indexOf('=');
  if (i < 0) return { id: spec || 'default', paths: [] };
  const id = spec.slice(0, i);
  const paths = spec.slice(i + 1).split(',').filter(Boolean);
  if (!id) throw new ImgError(`invalid --ssh "${spec}"`, { hint: 'use --ssh default or --ssh ID=/path/to/agent.sock' });
  return { id, paths };
}

export function parseAddHost(spec: string): { host: string; ip: string } {
  // docker accepts host:ip and host=ip (IPv6 contains ':', so split at the first separator).
  const m = /^([^:=]+)[:=](.+)$/.exec(spec);
  if (!m) throw new ImgError(`invalid --add-host "${spec}"`, { hint: 'use --add-host HOST:IP' });
  return { host: m[1], ip: m[2] === 'host-gateway' ? '127.0.0.1' : m[2] };
}

export function parseBuildContext(spec: string): BuildContextSpec {
  const i = spec.indexOf('=');
  if (i <= 0) throw new ImgError(`invalid --build-context "${spec}"`, { hint: 'use --build-context NAME=PATH or NAME=docker-image://REF' });
  const name = spec.slice(0, i);
  const v = spec.slice(i + 1);
  if (v.startsWith('docker-image://')) return { name, kind: 'image', ref: v.slice('docker-image://'.length) };
  if (/^[a-z]+:\/\//i.test(v) && !v.startsWith('file://')) {
    throw new ImgError(`--build-context ${name}=${v}: only local paths and docker-image:// are supported yet`, {
      hint: 'clone or download it first and pass the local path',
    });
  }
  return { name, kind: 'local', path: v.replace(/^file:\/\//, '') };
}

export function parseKeyValues(list: string[], flag: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i === 0) throw new ImgError(`invalid ${flag} "${item}"`, { hint: `use ${flag} KEY=VALUE` });
    if (i < 0) {
      // docker: `--build-arg KEY` takes the value from the environment (skipped when unset).
      if (flag === '--build-arg') {
        if (env[item] !== undefined) out[item] = env[item]!;
        continue;
      }
      out[item] = '';
    } else out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function parseSourceDateEpoch(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ImgError(`invalid SOURCE_DATE_EPOCH "${v}"`, { hint: 'set it to a Unix timestamp in seconds' });
  return Number(v);
}
