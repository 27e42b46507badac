// HTTP for the registry client: one undici Agent per process, timeouts for every
// phase of an exchange, bounded retries with backoff, manual redirects (auth must not
// leak to a blob store on another origin), and plain-HTTP fallback for --insecure-registry.
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { UsageError } from '../util/errors';
import { debug, isDebug } from '../util/log';
import { formatDuration, parseDuration } from '../util/units';
import { VERSION } from '../util/version';

export const USER_AGENT = `img/${VERSION}`;

// Node's TLS stack trusts only the CA list compiled into Node (plus NODE_EXTRA_CA_CERTS),
// not the distribution's trust store, and undici inherits that. Registries with
// certificates from a private CA added the Linux way (update-ca-certificates) would then
// fail, so the Agent is given the system bundle when it exists, together with Node's own
// list and NODE_EXTRA_CA_CERTS (setting `ca` replaces Node's defaults, so both are re-added).
const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

export function trustedCAs(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const bundle = SYSTEM_CA_BUNDLES.find((f) => fs.existsSync(f));
  if (!bundle) return undefined; // Node's defaults (which include NODE_EXTRA_CA_CERTS)
  const cas = [...tls.rootCertificates, fs.readFileSync(bundle, 'utf8')];
  if (env.NODE_EXTRA_CA_CERTS) {
    try {
      cas.push(fs.readFileSync(env.NODE_EXTRA_CA_CERTS, 'utf8'));
    } catch (err) {
      debug(`cannot read NODE_EXTRA_CA_CERTS ${env.NODE_EXTRA_CA_CERTS}: ${String(err)}`);
    }
  }
  return cas;
}

// undici is loaded on the first request: a fully cached build never talks to a
// registry. And only its Agent and request API: undici's index also loads fetch,
// WebSocket, cookies, mocks and caches, ~4× the code, which a cold build paid for
// (~40 ms of CPU with the code cache) before its first request.
type RequestFn = (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
let undiciModule: { Agent: typeof Agent; request: RequestFn } | undefined;
function undici(): { Agent: typeof Agent; request: RequestFn } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return (undiciModule ??= {
    Agent: require('undici/lib/dispatcher/agent') as typeof Agent,
    request: require('undici/lib/api/api-request') as RequestFn, // Dispatcher.prototype.request in undici's index
  });
  /* eslint-enable @typescript-eslint/no-require-imports */
}

// How long an exchange may make no progress before the attempt fails (and is retried):
// connecting, waiting for the response's headers, and between two pieces of a body
// (a slow download that keeps moving never times out). 0 waits forever.
export interface RegistryTimeouts {
  connectMs: number;
  headersMs: number;
  bodyMs: number;
}

export type StallKind = keyof RegistryTimeouts;

const DEFAULT_TIMEOUTS: RegistryTimeouts = { connectMs: 30_000, headersMs: 60_000, bodyMs: 60_000 };

// The settings (environment variables, so every command and the library honour them);
// IMG_REGISTRY_TIMEOUT sets all three, the others one each.
export const TIMEOUT_SETTINGS: Record<StallKind, string> = {
  connectMs: 'IMG_REGISTRY_CONNECT_TIMEOUT',
  headersMs: 'IMG_REGISTRY_HEADERS_TIMEOUT',
  bodyMs: 'IMG_REGISTRY_BODY_TIMEOUT',
};

function durationSetting(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const ms = parseDuration(v);
  if (ms === null) throw new UsageError(`${name}=${v} is not a duration`, { hint: `set it like 30s, 2m or 500ms (0: no limit)` });
  return ms;
}

export function registryTimeouts(env: NodeJS.ProcessEnv = process.env): RegistryTimeouts {
  const all = durationSetting(env, 'IMG_REGISTRY_TIMEOUT');
  const out = { ...DEFAULT_TIMEOUTS };
  for (const k of Object.keys(TIMEOUT_SETTINGS) as StallKind[]) out[k] = durationSetting(env, TIMEOUT_SETTINGS[k]) ?? all ?? DEFAULT_TIMEOUTS[k];
  return out;
}

// undici's codes for the three stalls.
const STALL_CODES: Record<string, StallKind> = {
  UND_ERR_CONNECT_TIMEOUT: 'connectMs',
  UND_ERR_HEADERS_TIMEOUT: 'headersMs',
  UND_ERR_BODY_TIMEOUT: 'bodyMs',
};

// Which timeout `err` (or an error it wraps) is, if any.
export function stallOf(err: unknown, depth = 0): StallKind | undefined {
  const e = err as { code?: string; cause?: unknown } | undefined;
  if (!e || depth > 4) return undefined;
  if (e.code && STALL_CODES[e.code]) return STALL_CODES[e.code];
  return e.cause !== err ? stallOf(e.cause, depth + 1) : undefined;
}

// A stall in words, with the limit that ran out: "no data for 60s".
export function describeStall(kind: StallKind, timeouts = registryTimeouts()): string {
  const t = formatDuration(timeouts[kind]);
  return kind === 'connectMs' ? `no connection within ${t}` : kind === 'headersMs' ? `no answer within ${t}` : `no data for ${t}`;
}

export function stallHint(kind: StallKind, timeouts = registryTimeouts()): string {
  return `the registry (or a proxy in between) stopped answering; retry later, or allow more time with ${TIMEOUT_SETTINGS[kind]}=${formatDuration(Math.max(timeouts[kind] * 4, 1000))} (IMG_REGISTRY_TIMEOUT sets all three limits)`;
}

let secureAgent: Agent | undefined;
let insecureAgent: Agent | undefined;

// Connections are kept alive and several run in parallel per origin (one per blob).
// Header and body limits go with each request (send below), the connect limit here.
function agentOptions(): Agent.Options {
  return { connections: 16, keepAliveTimeout: 30_000 };
}

function connectTimeout(): number {
  return registryTimeouts().connectMs;
}

export function getAgent(verifyTls = true): Agent {
  if (verifyTls) {
    secureAgent ??= new (undici().Agent)({ ...agentOptions(), connect: { ca: trustedCAs(), timeout: connectTimeout() } });
    return secureAgent;
  }
  insecureAgent ??= new (undici().Agent)({ ...agentOptions(), connect: { rejectUnauthorized: false, timeout: connectTimeout() } });
  return insecureAgent;
}

// Closing the agents lets a long-lived process (tests, benchmarks) exit promptly.
export async function closeAgents(): Promise<void> {
  const agents = [secureAgent, insecureAgent].filter((a): a is Agent => Boolean(a));
  secureAgent = insecureAgent = undefined;
  await Promise.all(agents.map((a) => a.close()));
}

export type Body = string | Buffer | Readable | null;

export interface SendOptions {
  method: Dispatcher.HttpMethod;
  url: string;
  headers?: Record<string, string>;
  // A factory, so a retry or a redirect can send the body again.
  body?: () => Body;
  // Retry connection errors and 5xx/429 (off for requests whose repetition is unsafe).
  retry?: boolean;
  verifyTls?: boolean;
  signal?: AbortSignal;
  // Told before each retry: the attempt about to start (2, 3, …) and why the last failed.
  onRetry?: (attempt: number, reason: string) => void;
}

export interface Response {
  status: number;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export const MAX_ATTEMPTS = 5;
const MAX_WAIT_MS = 30_000;

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_ABORTED',
]);

export function isRetryableError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  if (code && RETRYABLE_CODES.has(code)) return true;
  const cause = (err as { cause?: unknown })?.cause;
  return cause !== undefined && cause !== err && isRetryableError(cause);
}

// A TLS hello answered in plain HTTP: OpenSSL reads the HTTP text as a record
// header and reports a wrong version or an absurd record length.
const TLS_MISMATCH_CODES = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

export function isTlsMismatch(err: unknown): boolean {
  const e = err as { code?: string; cause?: unknown };
  if (!e) return false;
  if (e.code && TLS_MISMATCH_CODES.has(e.code)) return true;
  return e.cause !== undefined && e.cause !== err && isTlsMismatch(e.cause);
}

export function header(res: { headers: Response['headers'] }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

// Exponential backoff (200 ms, 400 ms, …) with jitter, or the server's Retry-After.
export function backoffMs(attempt: number, retryAfter?: string): number {
  if (retryAfter) {
    const secs = Number(retryAfter);
    const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, MAX_WAIT_MS);
  }
  const base = 200 * 2 ** attempt;
  return Math.min(base + Math.random() * base * 0.2, MAX_WAIT_MS);
}

// Not unref'd: a CLI waiting to retry has nothing else keeping its event loop alive.
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function drain(body: Response['body']): Promise<void> {
  try {
    await body.dump();
  } catch {
    // a broken body is irrelevant once we decided to retry or fail
  }
}

// Whether send() retries this exchange (and how often it tries at most).
export function attemptsFor(opts: Pick<SendOptions, 'method' | 'retry'>): number {
  return (opts.retry ?? (opts.method === 'GET' || opts.method === 'HEAD')) ? MAX_ATTEMPTS : 1;
}

// Why an attempt failed, for progress lines: a stall in words, else the error's message.
export function failureReason(err: unknown): string {
  const stall = stallOf(err);
  return stall ? describeStall(stall) : String((err as Error)?.message ?? err);
}

// One HTTP exchange with redirects followed and transient failures retried.
// The caller owns the returned body and must consume or dump it.
export async function send(opts: SendOptions): Promise<Response> {
  const attempts = attemptsFor(opts);
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const res = await sendFollowing(opts);
      if ((res.status >= 500 || res.status === 429) && attempt < attempts - 1) {
        const wait = backoffMs(attempt, header(res, 'retry-after'));
        debug(`${opts.method} ${opts.url}: HTTP ${res.status}, waiting ${Math.round(wait)} ms`);
        await drain(res.body);
        await sleep(wait);
        opts.onRetry?.(attempt + 2, `HTTP ${res.status}`);
        continue;
      }
      return res;
    } catch (err) {
      lastError = err;
      if (attempt === attempts - 1 || !isRetryableError(err)) throw err;
      debug(`${opts.method} ${opts.url}: ${String((err as Error).message ?? err)}`);
      await sleep(backoffMs(attempt));
      opts.onRetry?.(attempt + 2, failureReason(err));
    }
  }
  throw lastError;
}

async function sendFollowing(opts: SendOptions): Promise<Response> {
  let url = opts.url;
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...opts.headers };
  const { headersMs, bodyMs } = registryTimeouts();
  for (let hop = 0; hop < 6; hop++) {
    const target = new URL(url);
    const res = await undici().request.call(getAgent(opts.verifyTls ?? true), {
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      headersTimeout: headersMs,
      bodyTimeout: bodyMs,
      method: opts.method,
      headers,
      body: opts.body ? opts.body() : null,
      signal: opts.signal,
      highWaterMark: 1 << 20,
    });
    if (isDebug()) debug(`${opts.method} ${url} → ${res.statusCode}`);
    const location = header(res, 'location');
    const redirect = [301, 302, 303, 307, 308].includes(res.statusCode) && location;
    // A 3xx with a Location on an upload is the registry telling us where the session
    // lives, not a redirect; only GET/HEAD (blob storage backends) are followed.
    if (!redirect || !(opts.method === 'GET' || opts.method === 'HEAD')) {
      return { status: res.statusCode, url, headers: res.headers, body: res.body };
    }
    await drain(res.body);
    const next = new URL(location, url);
    if (next.origin !== new URL(url).origin) delete headers.authorization; // presigned storage URLs carry their own auth
    url = next.toString();
  }
  // Plain: exchange() wraps it as a connection error naming the registry.
  throw new Error(`too many redirects for ${opts.url}`);
}
