// HTTP for the registry client, on node:http and node:https: one keep-alive agent
// per TLS mode for the process, timeouts for every phase of an exchange, bounded
// retries with backoff, manual redirects (auth must not leak to a blob store on
// another origin), and plain-HTTP fallback for --insecure-registry. A build asks a
// registry for a manifest, a config and a few blobs: Node's own client is loaded and
// ready at once, where undici cost a cold build ~50 ms of CPU before and during its
// first exchanges (its modules, its WebAssembly HTTP parser).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { UsageError } from '../util/errors';
import { debug, isDebug } from '../util/log';
import { formatDuration, parseDuration } from '../util/units';
import { VERSION } from '../util/version';

export const USER_AGENT = `img/${VERSION}`;

// Node's TLS stack trusts only the CA list compiled into Node (plus NODE_EXTRA_CA_CERTS),
// not the distribution's trust store. Registries with
// certificates from a private CA added the Linux way (update-ca-certificates) would then
// fail, so the agent is given the system bundle when it exists, together with Node's own
// list and NODE_EXTRA_CA_CERTS (setting `ca` replaces Node's defaults, so both are re-added).
// NODE_EXTRA_CA_CERTS is read here even without a system bundle: img-launch keeps it from
// Node at start-up (lib/cli/launch.ts takeBackDeferredEnv), so Node's defaults may lack it.
const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

export function trustedCAs(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const bundle = SYSTEM_CA_BUNDLES.find((f) => fs.existsSync(f));
  if (!bundle && !env.NODE_EXTRA_CA_CERTS) return undefined; // Node's defaults
  const cas = [...tls.rootCertificates];
  if (bundle) cas.push(fs.readFileSync(bundle, 'utf8'));
  if (env.NODE_EXTRA_CA_CERTS) {
    try {
      cas.push(fs.readFileSync(env.NODE_EXTRA_CA_CERTS, 'utf8'));
    } catch (err) {
      debug(`cannot read NODE_EXTRA_CA_CERTS ${env.NODE_EXTRA_CA_CERTS}: ${String(err)}`);
    }
  }
  return cas;
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

// The codes of the errors a stall fails an exchange with.
const STALL_CODES: Record<string, StallKind> = {
  IMG_HTTP_CONNECT_TIMEOUT: 'connectMs',
  IMG_HTTP_HEADERS_TIMEOUT: 'headersMs',
  IMG_HTTP_BODY_TIMEOUT: 'bodyMs',
};
const CODE_OF_STALL: Record<StallKind, string> = Object.fromEntries(Object.entries(STALL_CODES).map(([code, kind]) => [kind, code])) as Record<StallKind, string>;

function stallError(kind: StallKind): Error {
  return Object.assign(new Error(describeStall(kind)), { code: CODE_OF_STALL[kind] });
}

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

let secureAgent: https.Agent | undefined;
let insecureAgent: https.Agent | undefined;
let plainAgent: http.Agent | undefined;

// Connections are kept alive (idle ones do not keep the process running) and
// several run in parallel per origin (one per blob).
const AGENT_OPTIONS: http.AgentOptions = { keepAlive: true, maxSockets: 16, scheduling: 'lifo' };

function agentFor(url: URL, verifyTls: boolean): http.Agent {
  if (url.protocol === 'http:') return (plainAgent ??= new http.Agent(AGENT_OPTIONS));
  if (verifyTls) return (secureAgent ??= new https.Agent({ ...AGENT_OPTIONS, ca: trustedCAs() }));
  return (insecureAgent ??= new https.Agent({ ...AGENT_OPTIONS, rejectUnauthorized: false }));
}

// Closing the agents lets a long-lived process (tests, benchmarks) exit promptly.
export async function closeAgents(): Promise<void> {
  for (const a of [secureAgent, insecureAgent, plainAgent]) a?.destroy();
  secureAgent = insecureAgent = plainAgent = undefined;
}

export type Body = string | Buffer | Readable | null;

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface SendOptions {
  method: HttpMethod;
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

// A response's body: the message as a stream, and readers for the small ones. The readers
// hold at most `limit` bytes (a registry or proxy may answer with gigabytes): past it the
// body is dropped with its connection and they reject with a BodyTooLargeError.
export interface ResponseBody extends Readable {
  text(limit?: number): Promise<string>;
  json(limit?: number): Promise<unknown>;
  arrayBuffer(limit?: number): Promise<ArrayBuffer>;
  // The first `limit` bytes (an error's explanation); the rest is dropped.
  head(limit: number): Promise<Buffer>;
  // Discards the rest (reads a short one to keep the connection, drops a long one's).
  dump(): Promise<void>;
}

export interface Response {
  status: number;
  url: string;
  // Lower-case names; a header sent more than once is an array.
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export const MAX_ATTEMPTS = 5;
const MAX_WAIT_MS = 30_000;

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  ...Object.keys(STALL_CODES),
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

const MAX_REDIRECTS = 5;
// The code of the error for a chain of redirects that does not end (a loop).
export const REDIRECT_LOOP = 'IMG_HTTP_REDIRECT_LOOP';

async function sendFollowing(opts: SendOptions): Promise<Response> {
  let url = opts.url;
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...opts.headers };
  const timeouts = registryTimeouts();
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await exchange(new URL(url), opts.method, headers, opts.body ? opts.body() : null, opts.verifyTls ?? true, timeouts, opts.signal);
    if (isDebug()) debug(`${opts.method} ${url} → ${res.status}`);
    const location = header(res, 'location');
    const redirect = [301, 302, 303, 307, 308].includes(res.status) && location;
    // A 3xx with a Location on an upload is the registry telling us where the session
    // lives, not a redirect; only GET/HEAD (blob storage backends) are followed.
    if (!redirect || !(opts.method === 'GET' || opts.method === 'HEAD')) return { ...res, url };
    await drain(res.body);
    const next = new URL(location, url);
    if (next.origin !== new URL(url).origin) delete headers.authorization; // presigned storage URLs carry their own auth
    url = next.toString();
  }
  // Plain: the client wraps it as an error naming the registry (errors.ts connectionError).
  throw Object.assign(new Error(`more than ${MAX_REDIRECTS} redirects, the last to ${url}`), { code: REDIRECT_LOOP });
}

// One request and its response's head, with the three stall limits: connecting; the
// answer's headers (from the connection until they arrive, a request body's progress
// counting as progress); and the body, between two pieces of it. A body the caller
// does not read (paused, or holding unread data) is not stalled.
function exchange(
  url: URL,
  method: HttpMethod,
  headers: Record<string, string>,
  body: Body,
  verifyTls: boolean,
  timeouts: RegistryTimeouts,
  signal: AbortSignal | undefined,
): Promise<Omit<Response, 'url'>> {
  return new Promise((resolve, reject) => {
    const sendHeaders = { ...headers };
    const fixed = typeof body === 'string' ? Buffer.from(body) : body instanceof Buffer ? body : null;
    if (fixed && sendHeaders['content-length'] === undefined) sendHeaders['content-length'] = String(fixed.length);
    if (!body && method !== 'GET' && method !== 'HEAD' && sendHeaders['content-length'] === undefined) sendHeaders['content-length'] = '0';
    const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers: sendHeaders, agent: agentFor(url, verifyTls), signal });
    let timer: NodeJS.Timeout | undefined;
    let socket: Socket | undefined;
    let message: http.IncomingMessage | undefined;
    const disarm = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    // Unref'd: a limit never keeps the process alive; the socket does while it is used.
    const arm = (kind: StallKind): void => {
      disarm();
      if (timeouts[kind] > 0) timer = setTimeout(() => stalled(kind), timeouts[kind]).unref();
    };
    const stalled = (kind: StallKind): void => {
      timer = undefined;
      if (message?.complete) return; // all of it arrived; the reader takes its time
      // The reader is behind, not the registry: not reading yet, or holding unread data
      // (a paused reader's buffer fills while the registry sends).
      if (kind === 'bodyMs' && message && (message.readableFlowing === null || message.readableLength > 0)) return arm(kind);
      const err = stallError(kind);
      if (message) message.destroy(err);
      else req.destroy(err);
    };
    const progress = (): void => {
      if (timer) arm(message ? 'bodyMs' : 'headersMs');
    };
    const done = (): void => {
      disarm();
      socket?.off('data', progress);
    };
    req.once('socket', (s: Socket) => {
      socket = s;
      if (s.connecting) {
        arm('connectMs');
        s.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => arm('headersMs'));
      } else arm('headersMs');
      s.on('data', progress);
    });
    // Also after the response: errors there reach the body's reader through the message.
    req.on('error', (err) => {
      done();
      reject(err);
    });
    req.once('close', () => {
      if (!message) done();
    });
    req.once('response', (res: http.IncomingMessage) => {
      message = res;
      arm('bodyMs');
      res.once('end', done);
      res.once('close', done);
      resolve({ status: res.statusCode ?? 0, headers: headersOf(res), body: withReaders(res) });
    });
    if (body instanceof Readable) {
      body.on('data', progress);
      body.once('error', (err) => req.destroy(err));
      req.once('close', () => {
        if (!body.readableEnded) body.destroy(); // a failed upload closes its source (a file)
      });
      body.pipe(req);
    } else req.end(fixed ?? undefined);
  });
}

// One string per header, or an array for a repeated one (www-authenticate with two challenges).
function headersOf(res: http.IncomingMessage): Response['headers'] {
  const out: Response['headers'] = {};
  for (const [name, values] of Object.entries(res.headersDistinct)) if (values) out[name] = values.length === 1 ? values[0] : values;
  return out;
}

// Bodies longer than this are dropped with their connection by dump(), not read.
const DUMP_LIMIT = 128 << 10;

// What the readers hold by default: more than any manifest, token or error document.
export const READ_LIMIT = 8 << 20;

// A body longer than its reader's limit; `size` is what the response announced or what was read.
export class BodyTooLargeError extends Error {
  readonly code = 'IMG_HTTP_BODY_TOO_LARGE';
  constructor(
    readonly limit: number,
    readonly size: number,
    readonly announced: boolean,
  ) {
    super(`the response body ${announced ? `is ${size}` : `exceeds ${limit}`} bytes, more than the ${limit} expected`);
  }
}

function withReaders(res: http.IncomingMessage): ResponseBody {
  // Up to `limit` bytes; `whole` rejects past it, else the rest is dropped.
  const upTo = async (limit: number, whole: boolean): Promise<Buffer> => {
    const announced = Number(res.headers['content-length']);
    if (whole && Number.isFinite(announced) && announced > limit) {
      res.destroy();
      throw new BodyTooLargeError(limit, announced, true);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res) {
      chunks.push(c as Buffer);
      if ((n += (c as Buffer).length) > limit) {
        res.destroy();
        if (whole) throw new BodyTooLargeError(limit, n, false);
        break;
      }
    }
    const all = Buffer.concat(chunks);
    return all.length > limit ? all.subarray(0, limit) : all;
  };
  const body = res as http.IncomingMessage & ResponseBody;
  body.text = async (limit = READ_LIMIT) => (await upTo(limit, true)).toString('utf8');
  body.json = async (limit = READ_LIMIT) => JSON.parse((await upTo(limit, true)).toString('utf8')) as unknown;
  body.arrayBuffer = async (limit = READ_LIMIT) => {
    const b = await upTo(limit, true);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };
  body.head = (limit) => upTo(limit, false);
  body.dump = () =>
    new Promise<void>((resolve) => {
      if (res.readableEnded || res.destroyed) return resolve();
      let n = 0;
      res.on('error', () => undefined);
      res.once('end', () => resolve());
      res.once('close', () => resolve());
      res.on('data', (c: Buffer) => {
        if ((n += c.length) > DUMP_LIMIT) res.destroy();
      });
      res.resume();
    });
  return body;
}
