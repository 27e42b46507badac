// `img build` inputs as one value (BuildOptions), and parsers for the
// docker/buildx flag syntaxes (-o CSV, --secret, --build-context, --add-host).
import type { CacheExportSpec, CacheImportSpec } from '../cache/index';
import type { ImageAnnotation, ImageFormat } from '../export/index';
import { formatPlatform, normalizePlatform, parsePlatform } from '../images/platform';
import { ImgError, UnsupportedError, UsageError } from '../util/errors';
import type { Platform } from '../images/types';
import type { ProgressMode } from '../progress/index';
import { hardLimit, ULIMIT_ROWS, type Rlimit } from '../exec/spec';
import { parseBytes } from '../util/units';

// `push`: also push to each name's registry; `store`: name it in the local
// image store (type=registry is type=image,push=true,store=false).
export type OutputSpec =
  | { type: 'image'; names: string[]; push: boolean; store: boolean; insecure?: boolean; format: ImageFormat }
  | { type: 'docker'; dest?: string; names: string[]; format: ImageFormat; layoutDir?: boolean } // layoutDir: tar=false
  | { type: 'oci'; dest?: string; names: string[]; format: ImageFormat; layoutDir?: boolean }
  | { type: 'tar'; dest?: string; platformSplit?: boolean }
  | { type: 'local'; dest: string; platformSplit?: boolean }
  // BuildKit's cacheonly exporter: build, export nothing (the cache is kept, and --cache-to exported).
  | { type: 'cacheonly' };

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
  cacheFrom: CacheImportSpec[]; // --cache-from, in order
  cacheTo: CacheExportSpec[]; // --cache-to
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
  check?: boolean; // --check: run the build checks, build nothing
  shmSize?: number; // --shm-size, bytes (undefined: BuildKit's 64 MiB)
  rlimits?: Rlimit[]; // --ulimit
  allowInsecure?: boolean;
  noCacheFilter?: string[]; // --no-cache-filter: stages whose steps run although cached // --allow security.insecure: RUN --security=insecure may run
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

const OUTPUT_HINT = 'use e.g. -o type=tar,dest=rootfs.tar | type=docker,dest=image.tar | type=oci,dest=image.tar | type=local,dest=dir | type=image,name=NAME[,push=true] | type=registry,name=NAME | type=cacheonly';

// The keys each output type takes; any other key is an error naming it (never ignored).
const FORMAT_KEYS = ['compression', 'compression-level', 'force-compression', 'oci-mediatypes'];
const OUTPUT_KEYS: Record<string, string[]> = {
  image: ['name', 'push', 'store', 'registry.insecure', ...FORMAT_KEYS],
  registry: ['name', 'push', 'store', 'registry.insecure', ...FORMAT_KEYS],
  docker: ['name', 'dest', 'tar', ...FORMAT_KEYS],
  oci: ['name', 'dest', 'tar', ...FORMAT_KEYS],
  tar: ['dest', 'platform-split'],
  local: ['dest', 'platform-split'],
  cacheonly: [],
};

// BuildKit's docker exporter defaults to oci-mediatypes=false (its oci one to true);
// zstd forces OCI media types, as Docker's have no zstd layer.
function archiveFormat(type: 'docker' | 'oci', f: ImageFormat): ImageFormat {
  return type === 'docker' && f.ociMediaTypes === undefined && f.compression !== 'zstd' ? { ...f, ociMediaTypes: false } : f;
}

// platform-split of type=tar|local (BuildKit's multiplatform exporter attribute).
function split(fields: Record<string, string>): { platformSplit?: boolean } {
  return fields['platform-split'] === undefined ? {} : { platformSplit: parseBool(fields['platform-split'], 'platform-split') };
}

export function parseBool(v: string, what: string): boolean {
  const s = v.trim().toLowerCase();
  if (['true', '1', 't'].includes(s)) return true;
  if (['false', '0', 'f'].includes(s)) return false;
  throw new UsageError(`${what}=${v} is not a boolean`, { hint: `use ${what}=true or ${what}=false` });
}

// compression, compression-level, force-compression, oci-mediatypes (BuildKit's
// exporter options; `flag` names the flag in errors).
export function parseImageFormat(fields: Record<string, string>, flag: string): ImageFormat {
  const f: ImageFormat = {};
  if (fields.compression !== undefined) {
    const c = fields.compression.toLowerCase();
    if (c === 'gzip' || c === 'zstd') f.compression = c;
    else if (c === 'uncompressed') f.compression = 'none';
    else if (c === 'estargz') {
      throw new UnsupportedError(`${flag} compression=estargz is not supported`, { hint: 'use compression=gzip, zstd or uncompressed' });
    } else throw new UsageError(`${flag} compression=${fields.compression} is not a compression`, { hint: 'use compression=gzip, zstd or uncompressed' });
  }
  if (fields['compression-level'] !== undefined) {
    const level = Number(fields['compression-level']);
    const c = f.compression ?? 'gzip';
    const [lo, hi] = c === 'zstd' ? [1, 19] : c === 'gzip' ? [0, 9] : [0, 0];
    if (c === 'none') {
      throw new UsageError(`${flag} compression-level has no meaning with compression=uncompressed`, { hint: 'drop compression-level, or choose compression=gzip or zstd' });
    }
    if (!/^\d+$/.test(fields['compression-level']) || level < lo || level > hi) {
      throw new UsageError(`${flag} compression-level=${fields['compression-level']} is out of range for ${c}`, { hint: `use a level from ${lo} to ${hi} for ${c}` });
    }
    f.compressionLevel = level;
  }
  if (fields['force-compression'] !== undefined) f.forceCompression = parseBool(fields['force-compression'], 'force-compression');
  if (fields['oci-mediatypes'] !== undefined) f.ociMediaTypes = parseBool(fields['oci-mediatypes'], 'oci-mediatypes');
  if (f.ociMediaTypes === false && f.compression === 'zstd') {
    throw new UsageError(`${flag} compression=zstd cannot be written with oci-mediatypes=false (Docker media types have no zstd layer)`, {
      hint: 'drop oci-mediatypes=false, or use compression=gzip',
    });
  }
  return f;
}

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
  const known = OUTPUT_KEYS[type];
  if (!known) throw new UsageError(`unknown --output type "${type}"`, { hint: OUTPUT_HINT });
  const annotations: ImageAnnotation[] = [];
  for (const k of Object.keys(fields)) {
    // annotation[-TYPE][[PLATFORM]].KEY=VALUE (BuildKit's image exporter options)
    if (k.startsWith('annotation') && ['image', 'registry', 'docker', 'oci'].includes(type)) {
      annotations.push(parseAnnotationKey(k, fields[k]));
      continue;
    }
    if (k !== 'type' && !known.includes(k)) {
      throw new UnsupportedError(`--output type=${type} does not support the option "${k}"`, { hint: `type=${type} takes ${known.join(', ')}` });
    }
  }
  const names = (fields.name ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  const dest = fields.dest === '-' ? undefined : fields.dest;
  const flag = `--output type=${type}`;
  const withAnn = (f: ImageFormat): ImageFormat => (annotations.length ? { ...f, annotations } : f);
  switch (type) {
    case 'image':
    case 'registry': {
      const push = type === 'registry' || (fields.push !== undefined && parseBool(fields.push, 'push'));
      if (type === 'registry' && fields.push !== undefined && !parseBool(fields.push, 'push')) {
        throw new UsageError('--output type=registry always pushes; push=false contradicts it', { hint: 'use type=image to build without pushing' });
      }
      const store = fields.store !== undefined ? parseBool(fields.store, 'store') : type === 'image';
      const out: OutputSpec = { type: 'image', names: names.length ? names : tags, push, store, format: withAnn(parseImageFormat(fields, flag)) };
      if (fields['registry.insecure'] !== undefined) out.insecure = parseBool(fields['registry.insecure'], 'registry.insecure');
      if (push && out.names.length === 0) {
        throw new UsageError(`${flag}${type === 'image' ? ',push=true' : ''} needs a name to push to`, { hint: 'pass -t REGISTRY/NAME:TAG, or name=REGISTRY/NAME:TAG in --output' });
      }
      return out;
    }
    case 'docker':
    case 'oci':
      if (fields.tar !== undefined && !parseBool(fields.tar, 'tar')) {
        // An OCI layout directory at dest, as BuildKit's client writes it.
        if (!dest) throw new UsageError(`${flag},tar=false needs dest=DIR`, { hint: `use -o type=${type},tar=false,dest=./layout` });
        return { type, dest, names: names.length ? names : tags, format: withAnn(archiveFormat(type, parseImageFormat(fields, flag))), layoutDir: true };
      }
      return { type, dest, names: names.length ? names : tags, format: withAnn(archiveFormat(type, parseImageFormat(fields, flag))) };
    case 'tar':
      return { type: 'tar', dest, ...split(fields) };
    case 'cacheonly':
      return { type: 'cacheonly' };
    default:
      if (!fields.dest) throw new UsageError('--output type=local needs dest=DIR', { hint: 'use -o type=local,dest=./out' });
      return { type: 'local', dest: fields.dest, ...split(fields) };
  }
}

// --push: buildx's shorthand for --output type=registry (the -t names, pushed and not
// stored locally); with an explicit image output it sets push=true on that output.
export function withPush(outputs: OutputSpec[], push: boolean, tags: string[]): OutputSpec[] {
  if (!push) return outputs;
  if (outputs.length === 0) return [parseOutput('type=registry', tags)];
  return outputs.map((o) => {
    if (o.type !== 'image') {
      throw new UsageError(`--push cannot push an --output type=${o.type}`, { hint: 'drop --push, or use --output type=image,push=true' });
    }
    if (o.names.length === 0) throw new UsageError('--push needs a name to push to', { hint: 'pass -t REGISTRY/NAME:TAG' });
    return { ...o, push: true };
  });
}

// --load: buildx's shorthand for --output type=docker into docker's image store. img's
// image store is the local one: the image is stored (the default), and with --push
// it is pushed and stored. Another output type would be a second output.
export function withLoad(outputs: OutputSpec[], tags: string[]): OutputSpec[] {
  if (outputs.length === 0) return [{ type: 'image', names: tags, push: false, store: true, format: {} }];
  return outputs.map((o) => {
    if (o.type !== 'image') {
      throw new UnsupportedError(`--load cannot be combined with --output type=${o.type}: only one output is supported`, {
        hint: 'drop --load to write the output only, or drop --output to store the image (then `img save` it)',
      });
    }
    return { ...o, store: true };
  });
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
    if (i === 0) throw new UsageError(`invalid ${flag} "${item}": the name before "=" is empty`, { hint: `use ${flag} KEY=VALUE` });
    if (i < 0) {
      // buildx: `--build-arg KEY` takes the value from the environment (skipped when
      // unset, so the Dockerfile's default holds); `--label KEY` is an empty label.
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

// --shm-size: docker's MemBytes ("64m", "2g", "1048576"); 0 is the default (64 MiB).
export function parseShmSize(v: string): number {
  const n = parseBytes(v);
  if (n === null) throw new UsageError(`invalid argument "${v}" for "--shm-size" flag: invalid size: '${v}'`, { hint: 'use a size such as 64m or 2g' });
  return n;
}

// --ulimit NAME=SOFT[:HARD] (docker's go-units ParseUlimit; -1 is unlimited). Given
// repeatedly, the last one of a name counts. An unprivileged user cannot raise a
// hard limit above its own (runc's setrlimit in the container fails with EPERM):
// refused here, naming the limit the user has.
export function parseUlimits(list: string[], limits?: string): Rlimit[] {
  const byName = new Map<string, Rlimit>();
  for (const spec of list) {
    const [name, value, ...more] = spec.split('=');
    if (value === undefined || more.length) throw new UsageError(`invalid ulimit argument: ${spec}`, { hint: 'use --ulimit NAME=SOFT[:HARD], e.g. --ulimit nofile=1024:2048' });
    if (!ULIMIT_ROWS[name]) throw new UsageError(`invalid ulimit type: ${name}`, { hint: `use one of ${Object.keys(ULIMIT_ROWS).join(', ')}` });
    const parts = value.split(':');
    if (parts.length > 2) throw new UsageError(`too many limit value arguments - ${value}, can only have up to two, \`soft:hard\``, { hint: 'use --ulimit NAME=SOFT[:HARD]' });
    const nums = parts.map((p) => {
      if (!/^-?\d+$/.test(p)) throw new UsageError(`invalid ulimit argument: ${spec}`, { hint: 'the limits are whole numbers (-1: unlimited)' });
      return Number(p);
    });
    const [soft, hard = soft] = nums;
    const lim = (n: number): number | 'unlimited' => (n < 0 ? 'unlimited' : n);
    const big = (x: number | 'unlimited') => (x === 'unlimited' ? Infinity : x);
    if (big(lim(soft)) > big(lim(hard))) {
      throw new UsageError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`, { hint: `e.g. --ulimit ${name}=${hard}:${hard}` });
    }
    const mine = hardLimit(name, limits);
    if (mine !== undefined && big(lim(hard)) > big(mine)) {
      throw new UnsupportedError(
        `--ulimit ${spec}: the hard limit ${hard < 0 ? 'unlimited' : hard} is above this user's hard ${name} limit of ${mine}; an unprivileged user cannot raise a hard limit (runc's setrlimit would fail with "operation not permitted")`,
        { hint: `use a hard limit of at most ${mine} (--ulimit ${name}=${typeof mine === 'number' ? Math.min(soft < 0 ? mine : soft, mine) : soft}:${mine}), or raise the user's own limit (limits.conf, systemd LimitNOFILE=…)` },
      );
    }
    byName.set(name, { type: `RLIMIT_${name.toUpperCase()}`, soft: lim(soft), hard: lim(hard) });
  }
  return [...byName.values()];
}

const ANNOTATION_TYPES = ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'] as const;

function annotationPlatform(p: string): string {
  try {
    return formatPlatform(normalizePlatform(parsePlatform(p)));
  } catch (err) {
    throw new UsageError(`invalid platform "${p}"`, { hint: 'use e.g. linux/amd64 or linux/arm64/v8', cause: err });
  }
}

// An output option annotation[-TYPE][[PLATFORM]].KEY (BuildKit's ParseAnnotationKey;
// no type is a manifest annotation).
function parseAnnotationKey(k: string, value: string): ImageAnnotation {
  const m = /^annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)$/.exec(k);
  if (!m) throw new UsageError(`could not fully parse annotation ${k}`, { hint: 'use annotation.KEY=VALUE or annotation-TYPE[PLATFORM].KEY=VALUE' });
  const type = (m[1] ?? 'manifest') as ImageAnnotation['type'];
  if (!ANNOTATION_TYPES.includes(type)) throw new UsageError(`unrecognized annotation type ${m[1]}`, { hint: `use ${ANNOTATION_TYPES.join(', ')}` });
  return { type, ...(m[2] ? { platform: annotationPlatform(m[2]) } : {}), key: m[3], value };
}

// buildx --annotation [TYPE[,TYPE…]:]KEY=VALUE, each TYPE optionally TYPE[PLATFORM]; no type: manifest.
export function parseAnnotationFlag(spec: string): ImageAnnotation[] {
  const eq = spec.indexOf('=');
  if (eq < 0) throw new UsageError(`invalid annotation "${spec}", expected key=value`, { hint: 'use --annotation [TYPE:]KEY=VALUE' });
  const k = spec.slice(0, eq);
  const value = spec.slice(eq + 1);
  const colon = k.indexOf(':');
  if (colon < 0) return [{ type: 'manifest', key: k, value }];
  const key = k.slice(colon + 1);
  return k
    .slice(0, colon)
    .split(',')
    .map((tp) => {
      const m = /^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$/.exec(tp);
      if (!m) throw new UsageError(`invalid annotation type "${tp}", expected type and optional platform in square brackets`, { hint: 'e.g. --annotation "manifest[linux/amd64]:KEY=VALUE"' });
      if (!ANNOTATION_TYPES.includes(m[1] as ImageAnnotation['type'])) throw new UsageError(`unknown annotation type "${m[1]}"`, { hint: `use ${ANNOTATION_TYPES.join(', ')}` });
      return { type: m[1] as ImageAnnotation['type'], ...(m[2] ? { platform: annotationPlatform(m[2]) } : {}), key, value };
    });
}

// --annotation applies to every image output (buildx adds it to image, registry, docker and
// oci exporters; filesystem outputs have no manifest); with no --output, to the stored image.
export function withAnnotations(outputs: OutputSpec[], annotations: ImageAnnotation[], tags: string[]): OutputSpec[] {
  if (!annotations.length) return outputs;
  const base: OutputSpec[] = outputs.length ? outputs : [{ type: 'image', names: tags, push: false, store: true, format: {} }];
  return base.map((o) => (o.type === 'image' || o.type === 'docker' || o.type === 'oci' ? { ...o, format: { ...o.format, annotations: [...annotations, ...(o.format.annotations ?? [])] } } : o));
}
