// Image config accumulation the way Docker/BuildKit write it: Env replaces in
// place, EXPOSE expands ranges, HEALTHCHECK durations are nanoseconds, and
// history `created_by` strings use Go's %q / %v formatting as BuildKit does.

import type { ContainerConfig, HealthConfig, HistoryEntry, ImageConfig, Platform } from '../../images/types';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

// The config of `FROM scratch`: BuildKit starts with WorkingDir "/" and a PATH.
export function emptyImage(platform: Platform): ImageConfig {
  const img: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) img.variant = platform.variant;
  return img;
}

export function cloneImage(img: ImageConfig): ImageConfig {
  return JSON.parse(JSON.stringify(img)) as ImageConfig;
}

// The members image-spec's Go types (and Docker's extension) know; BuildKit reads
// a base image's config into them, so anything else — docker's container_config,
// docker_version, config.Hostname, AttachStdout, ... — is gone from what it
// builds, and empty values are left out (omitempty).
const CONFIG_KEYS: (keyof ContainerConfig)[] = [
  'User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped',
  'Healthcheck', 'OnBuild', 'Shell',
];
const HEALTH_KEYS: (keyof HealthConfig)[] = ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'];
const HISTORY_KEYS: (keyof HistoryEntry)[] = ['created', 'created_by', 'author', 'comment', 'empty_layer'];

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);
}

function pick<T extends object>(from: T, keys: (keyof T)[]): T {
  const out = {} as T;
  for (const k of keys) if (!isEmpty(from[k])) out[k] = from[k];
  return out;
}

export function baseImageConfig(raw: ImageConfig): ImageConfig {
  const src = cloneImage(raw);
  const img: ImageConfig = { architecture: src.architecture ?? '', os: src.os ?? '', rootfs: { type: 'layers', diff_ids: src.rootfs?.diff_ids ?? [] } };
  if (src.created) img.created = src.created;
  if (src.author) img.author = src.author;
  if (src.variant) img.variant = src.variant;
  if (src['os.version']) img['os.version'] = src['os.version'];
  const features = (src as { 'os.features'?: string[] })['os.features'];
  if (features?.length) (img as { 'os.features'?: string[] })['os.features'] = features;
  if (src.config) {
    img.config = pick(src.config, CONFIG_KEYS);
    if (img.config.Healthcheck) img.config.Healthcheck = pick(img.config.Healthcheck, HEALTH_KEYS);
  }
  if (src.history?.length) img.history = src.history.map((h) => pick(h, HISTORY_KEYS));
  return img;
}

export function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

// Sets k=v, replacing an existing k where it stands (Docker's addEnv).
export function addEnv(env: string[], k: string, v: string): string[] {
  const i = env.findIndex((e) => envKey(e) === k);
  if (i >= 0) env[i] = `${k}=${v}`;
  else env.push(`${k}=${v}`);
  return env;
}

export function ensureConfig(img: ImageConfig): ContainerConfig {
  if (!img.config) img.config = {};
  return img.config;
}

export function historyEntry(createdBy: string, emptyLayer: boolean, epoch: string | undefined, buildkitSuffix: boolean): HistoryEntry {
  const h: HistoryEntry = { created_by: buildkitSuffix ? `${createdBy} # buildkit` : createdBy, comment: HISTORY_COMMENT };
  if (epoch) h.created = epoch;
  if (emptyLayer) h.empty_layer = true;
  return h;
}

// ---- Go formatting, for history strings identical to BuildKit's ----

// strconv.Quote: printable characters as they are, the rest escaped.
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else out += goEscape(c, ch);
  }
  return out + '"';
}

function goEscape(c: number, ch: string): string {
  switch (c) {
    case 7: return '\\a';
    case 8: return '\\b';
    case 9: return '\\t';
    case 10: return '\\n';
    case 11: return '\\v';
    case 12: return '\\f';
    case 13: return '\\r';
  }
  if (c < 0x20 || c === 0x7f) return '\\x' + c.toString(16).padStart(2, '0');
  // Non-ASCII: printable stays (approximation of unicode.IsPrint).
  if ((c >= 0x80 && c < 0xa0) || c === 0xad || c === 0xfffd) {
    return c < 0x100 ? '\\u00' + c.toString(16).padStart(2, '0') : '\\u' + c.toString(16).padStart(4, '0');
  }
  return ch;
}

// fmt %q of []string: ["a" "b"]
export function goQuoteSlice(a: string[] | null | undefined): string {
  return '[' + (a ?? []).map(goQuote).join(' ') + ']';
}

// time.Duration.String() for nanoseconds.
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let s: string;
  if (u < 1e3) s = `${u}ns`;
  else if (u < 1e6) s = `${trimFloat(u / 1e3)}µs`;
  else if (u < 1e9) s = `${trimFloat(u / 1e6)}ms`;
  else {
    const h = Math.floor(u / 3.6e12);
    u -= h * 3.6e12;
    const m = Math.floor(u / 6e10);
    u -= m * 6e10;
    const sec = trimFloat(u / 1e9);
    s = h > 0 ? `${h}h${m}m${sec}s` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
  }
  return neg ? '-' + s : s;
}

function trimFloat(x: number): string {
  return String(Number(x.toFixed(9)));
}

// ---- EXPOSE ----

// EXPOSE port specs as BuildKit reads them: "80", "80/tcp", "8000-8002/udp",
// "[ip:]hostPort:containerPort[/proto]" (only the container part is kept).
// Returns "port/proto" keys in order, or throws BuildKit's message.
export function parsePortSpec(raw: string): string[] {
  const parts = raw.split(':');
  const n = parts.length;
  const ip = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
  const hostPort = n >= 2 ? parts[n - 2] : '';
  const slash = parts[n - 1].indexOf('/');
  const containerPort = slash < 0 ? parts[n - 1] : parts[n - 1].slice(0, slash);
  let proto = slash < 0 ? '' : parts[n - 1].slice(slash + 1).toLowerCase();
  if (containerPort === '') throw new Error(`no port specified: ${parts[n - 1]}<empty>`);
  if (proto === '') proto = 'tcp';
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new Error(`invalid proto: ${proto}`);
  const bareIp = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (bareIp !== '' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(bareIp) && !/^[0-9a-fA-F:.]+$/.test(bareIp)) {
    throw new Error(`invalid IP address: ${ip}`);
  }
  const range = parsePortRange(containerPort);
  if (!range) throw new Error(`invalid containerPort: ${containerPort}`);
  if (hostPort !== '') {
    const h = parsePortRange(hostPort);
    if (!h) throw new Error(`invalid hostPort: ${hostPort}`);
    if (range[1] - range[0] !== h[1] - h[0] && range[1] !== range[0]) {
      throw new Error(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
  }
  const out: string[] = [];
  for (let p = range[0]; p <= range[1]; p++) out.push(`${p}/${proto}`);
  return out;
}

// "8000" or "8000-8002" (16-bit, start <= end), else null.
function parsePortRange(s: string): [number, number] | null {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(s);
  if (!m) return null;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535 || end < start) return null;
  return [start, end];
}

// ---- STOPSIGNAL ----

const SIGNALS = [
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL',
  'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'UNUSED', 'URG',
  'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
];

// moby/sys signal.ParseSignal: any non-zero integer (strconv.Atoi: an optional
// sign, decimal digits, int64 range), else a name from the Linux signal table,
// with or without SIG, any case; the real-time ones are RTMIN, RTMIN+1..RTMIN+15,
// RTMAX-14..RTMAX-1 and RTMAX.
export function validSignal(s: string): boolean {
  if (/^[+-]?[0-9]+$/.test(s)) {
    const n = BigInt(s);
    return n !== 0n && n >= -(2n ** 63n) && n < 2n ** 63n;
  }
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(name)) return true;
  const rt = /^RT(?:MIN|MAX)$|^RTMIN\+([1-9]|1[0-5])$|^RTMAX-([1-9]|1[0-4])$/.exec(name);
  return rt !== null;
}

// ---- HEALTHCHECK ----

// BuildKit writes fmt.Sprintf("HEALTHCHECK %+v", config) (its TestDispatchHealthcheckHistory;
// releases before 2025 wrote %q of the pointer, &{["CMD" ...] "1s" ... '\x05'}): field
// names, the Test words unquoted, durations as time.Duration.String(), Retries in decimal:
// HEALTHCHECK {Test:[CMD-SHELL curl x] Interval:30s Timeout:3s StartPeriod:0s StartInterval:0s Retries:3}.
export function healthcheckHistory(h: HealthConfig): string {
  const d = (ns: number | undefined): string => goDuration(ns ?? 0);
  return (
    `HEALTHCHECK {Test:[${(h.Test ?? []).join(' ')}] Interval:${d(h.Interval)} Timeout:${d(h.Timeout)} ` +
    `StartPeriod:${d(h.StartPeriod)} StartInterval:${d(h.StartInterval)} Retries:${h.Retries ?? 0}}`
  );
}
