// HTTP for the registry client: one undici Agent per process, bounded retries with
// backoff, manual redirects (auth must not leak to a blob store on another origin),
// and plain-HTTP fallback for --insecure-registry.
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { debug, isDebug } from '../util/log';
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

// undici is loaded on the first request: it takes longer to load (~0.3 s) than a
// fully cached build takes to run, and such a build never talks to a registry.
let undiciModule: typeof import('undici') | undefined;
function undici(): typeof import('undici') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (undiciModule ??= require('undici') as typeof import('undici'));
}

let secureAgent: Agent | undefined;
let insecureAgent: Agent | undefined;

// Connections are kept alive and several run in parallel per origin (one per blob).
function agentOptions(): Agent.Options {
  return { connections: 16, keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 300_000 };
}

export function getAgent(verifyTls = true): Agent {
  if (verifyTls) {
    secureAgent ??= new (undici().Agent)({ ...agentOptions(), connect: { ca: trustedCAs() } });
    return secureAgent;
  }
  insecureAgent ??= new (undici().Agent)({ ...agentOptions(), connect: { rejectUnauthorized: false } });
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

// One HTTP exchange with redirects followed and transient failures retried.
// The caller owns the returned body and must consume or dump it.
export async function send(opts: SendOptions): Promise<Response> {
  const retry = opts.retry ?? (opts.method === 'GET' || opts.method === 'HEAD');
  let lastError: unknown;
  for (let attempt = 0; attempt < (retry ? MAX_ATTEMPTS : 1); attempt++) {
    if (attempt > 0) debug(`retrying ${opts.method} ${opts.url} (attempt ${attempt + 1})`);
    try {
      const res = await sendFollowing(opts);
      if (retry && (res.status >= 500 || res.status === 429) && attempt < MAX_ATTEMPTS - 1) {
        const wait = backoffMs(attempt, header(res, 'retry-after'));
        debug(`${opts.method} ${opts.url}: HTTP ${res.status}, waiting ${Math.round(wait)} ms`);
        await drain(res.body);
        await sleep(wait);
        continue;
      }
      return res;
    } catch (err) {
      lastError = err;
      if (!retry || !isRetryableError(err)) throw err;
      debug(`${opts.method} ${opts.url}: ${String((err as Error).message ?? err)}`);
      await sleep(backoffMs(attempt));
    }
  }
  throw lastError;
}

async function sendFollowing(opts: SendOptions): Promise<Response> {
  let url = opts.url;
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...opts.headers };
  for (let hop = 0; hop < 6; hop++) {
    const res = await undici().request(url, {
      method: opts.method,
      headers,
      body: opts.body ? opts.body() : null,
      dispatcher: getAgent(opts.verifyTls ?? true),
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
