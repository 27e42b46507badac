// OCI distribution client for one registry: manifests (resolve, fetch, put) and blobs
// (fetch as a stream, existence, cross-repository mount, monolithic and chunked upload).
// Authorization (auth.ts) and retries/redirects (transport.ts) are applied to every call.
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Readable } from 'node:stream';
import { ContentError, ImgError, RegistryError, UnsupportedError } from '../util/errors';
import { debug } from '../util/log';
import { MediaType, type Descriptor, type Digest } from '../images/types';
import { authorizerFor, type Authorizer } from './auth';
import { connectionError, responseError, statusError, type ErrorContext } from './errors';
import { resolveHost, type RegistryHost } from './hosts';
import { attemptsFor, backoffMs, BodyTooLargeError, failureReason, header, isRetryableError, isTlsMismatch, MAX_ATTEMPTS, send, sleep, type Body, type Response, type SendOptions } from './transport';

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of CHUNK_SIZE.
export const MONOLITHIC_MAX = 32 << 20;
export const CHUNK_SIZE = 64 << 20;
const MAX_MANIFEST = 4 << 20;

export const pullScope = (repo: string): string => `repository:${repo}:pull`;
export const pushScope = (repo: string): string => `repository:${repo}:pull,push`;

export interface ClientOptions {
  insecure?: boolean;
  // Override the rule "loopback registries speak plain HTTP" (a TLS registry on 127.0.0.1).
  plainHttp?: boolean;
  // Use this authorizer (login verifies explicit credentials) instead of the shared one.
  authorizer?: Authorizer;
  // Told when an exchange is retried (progress shows it: a stall must not look like a hang).
  onRetry?: (ev: RetryEvent) => void;
}

export interface RetryEvent {
  ctx: ErrorContext;
  attempt: number; // the attempt about to start: 2, 3, …
  reason: string;
}

export type PushBlobResult = 'exists' | 'mounted' | 'uploaded';

// Whether host:port completes a TLS handshake (any certificate), asked once per process.
const tlsSpoken = new Map<string, Promise<boolean>>();
function speaksTls(apiHost: string): Promise<boolean> {
  let known = tlsSpoken.get(apiHost);
  if (!known) {
    const u = new URL(`https://${apiHost}`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    known = new Promise<boolean>((resolve) => {
      const socket = tls.connect({ host, port: Number(u.port || 443), servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false });
      const done = (yes: boolean) => {
        socket.destroy();
        resolve(yes);
      };
      socket.setTimeout(10_000, () => done(false));
      socket.once('secureConnect', () => done(true));
      socket.once('error', () => done(false));
    });
    tlsSpoken.set(apiHost, known);
  }
  return known;
}

// Opens the blob's bytes [start, end] (inclusive) for reading; called again on retry.
export type BlobOpener = (start: number, end: number) => Readable;

export class RegistryClient {
  readonly host: RegistryHost;
  private readonly auth: Authorizer;
  private scheme: 'http' | 'https';
  // A loopback registry is asked in plain HTTP first; one that turns out to speak TLS is then
  // asked in HTTPS without verifying its certificate, as docker treats 127.0.0.0/8 (insecure).
  private readonly loopbackGuess: boolean;
  private loopbackTls = false;
  onRetry?: (ev: RetryEvent) => void;

  constructor(domain: string, opts: ClientOptions = {}) {
    this.host = resolveHost(domain, { insecure: opts.insecure });
    if (opts.plainHttp !== undefined) this.host = { ...this.host, plainHttp: opts.plainHttp };
    this.auth = opts.authorizer ?? authorizerFor(this.host);
    this.scheme = this.host.plainHttp ? 'http' : 'https';
    this.loopbackGuess = this.host.plainHttp && opts.plainHttp === undefined;
    this.onRetry = opts.onRetry;
  }

  get baseUrl(): string {
    return `${this.scheme}://${this.host.apiHost}`;
  }

  // One authorized exchange: send, and on 401 learn the challenge and resend once.
  // Connection failures become RegistryErrors naming the registry; --insecure-registry
  // falls back from HTTPS to plain HTTP when the server does not speak TLS.
  async exchange(ctx: ErrorContext, scopes: string[], opts: Omit<SendOptions, 'url' | 'verifyTls'> & { path: string /* or an absolute URL (upload locations) */ }): Promise<Response> {
    for (;;) {
      const url = new URL(opts.path, this.baseUrl).toString();
      const onRetry = this.onRetry && ((attempt: number, reason: string) => this.onRetry!({ ctx, attempt, reason }));
      try {
        const res = await this.authorized(scopes, { ...opts, url, verifyTls: !this.host.insecure && !this.loopbackTls, onRetry });
        // HTTP 400 is what a TLS server answers a plain-HTTP request with.
        if (res.status === 400 && this.scheme === 'http' && this.loopbackGuess && (await speaksTls(this.host.apiHost))) {
          await res.body.dump().catch(() => undefined);
          debug(`${this.host.name} speaks TLS: using HTTPS, its certificate not verified (a loopback registry)`);
          this.scheme = 'https';
          this.loopbackTls = true;
          continue;
        }
        return res;
      } catch (err) {
        if (err instanceof ImgError) throw err;
        const mismatch = isTlsMismatch(err);
        if (mismatch && this.host.insecure && this.scheme === 'https') {
          debug(`${this.host.name} does not speak TLS; using plain HTTP (--insecure-registry)`);
          this.scheme = 'http';
          continue;
        }
        throw connectionError(ctx, url, err, mismatch, attemptsFor(opts));
      }
    }
  }

  private async authorized(scopes: string[], opts: SendOptions): Promise<Response> {
    const withAuth = async (s: string[]): Promise<{ res: Response; sent: boolean }> => {
      const authorization = await this.auth.authorization(s);
      const headers = { ...opts.headers };
      if (authorization) headers.authorization = authorization;
      return { res: await send({ ...opts, headers }), sent: Boolean(authorization) };
    };
    const first = await withAuth(scopes);
    if (first.res.status !== 401) return first.res;
    const retryScopes = await this.auth.handleUnauthorized(first.res, scopes, first.sent);
    if (!retryScopes) return first.res;
    await first.res.body.dump().catch(() => undefined);
    return (await withAuth(retryScopes)).res;
  }

  // GET /v2/ — checks reachability and, with credentials, that they are accepted.
  async ping(): Promise<void> {
    const ctx = { registry: this.host.name };
    const res = await this.exchange(ctx, [], { method: 'GET', path: '/v2/' });
    if (res.status !== 200) throw await responseError(ctx, res);
    await res.body.dump();
  }

  // HEAD a manifest: its descriptor, or undefined when the registry does not know it.
  async headManifest(repo: string, ref: string): Promise<Descriptor | undefined> {
    const ctx = { registry: this.host.name, repository: repo, what: `manifest ${ref}` };
    const res = await this.exchange(ctx, [pullScope(repo)], {
      method: 'HEAD',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { accept: MANIFEST_ACCEPT },
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 404) return undefined;
    // A registry (or proxy) that does not do HEAD on manifests (405, 501, …): the caller GETs.
    if (res.status === 405 || res.status === 501 || res.status === 400) {
      debug(`HEAD ${repo}/manifests/${ref} on ${this.host.name}: HTTP ${res.status}; asking with GET`);
      return undefined;
    }
    if (res.status !== 200) throw statusError(ctx, res.status, '');
    const digest = header(res, 'docker-content-digest');
    const mediaType = contentType(res);
    const size = Number(header(res, 'content-length'));
    if (!digest || !mediaType || !Number.isFinite(size)) return undefined; // registry too terse: caller GETs
    return { mediaType, digest: digest as Digest, size };
  }

  // GET a manifest or index; its bytes are verified against the digest asked for
  // (or the one the registry announces for a tag).
  async getManifest(repo: string, ref: string): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const ctx = { registry: this.host.name, repository: repo, what: `manifest ${ref}` };
    const res = await this.exchange(ctx, [pullScope(repo)], {
      method: 'GET',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status !== 200) throw await responseError(ctx, res);
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await res.body.arrayBuffer(MAX_MANIFEST)); // no more is read: a registry may send gigabytes
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw connectionError(ctx, `${this.baseUrl}/v2/${repo}/manifests/${ref}`, err, false);
      const size = err.announced ? ` (${err.size} bytes)` : '';
      throw new ContentError(`manifest ${ref} from ${this.host.name}/${repo} is larger than 4 MiB${size}`, { hint: 'this is not an image manifest; check the reference points to an image' });
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    const expected = ref.startsWith('sha256:') ? ref : header(res, 'docker-content-digest');
    if (expected && expected.startsWith('sha256:') && expected !== digest) {
      throw new ContentError(`manifest ${ref} from ${this.host.name}/${repo} has digest ${digest}, expected ${expected}`, {
        hint: 'the registry (or a proxy) altered the manifest; retry, or check the registry',
      });
    }
    let doc: { mediaType?: string; manifests?: unknown; config?: unknown; schemaVersion?: number };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new ContentError(`manifest ${ref} from ${this.host.name}/${repo} is not JSON`, { hint: 'check the reference points to an image' });
    }
    const mediaType = manifestMediaType(contentType(res), doc);
    if (!mediaType) {
      const what = doc.schemaVersion === 1 ? 'a Docker schema 1 manifest (deprecated, unsupported)' : `an unsupported manifest type (${contentType(res) ?? 'unknown'})`;
      throw new UnsupportedError(`${this.host.name}/${repo}:${ref} is ${what}`, { hint: 'push the image again with a current client (schema 2 or OCI)' });
    }
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
  }

  // GET a blob, from byte `from` on (206) when resuming. The caller must consume the
  // stream and verify it (the content store's ingest does).
  async getBlob(repo: string, digest: Digest, from = 0): Promise<Response> {
    const ctx = { registry: this.host.name, repository: repo, what: `blob ${digest}`, digest };
    const res = await this.exchange(ctx, [pullScope(repo)], {
      method: 'GET',
      path: `/v2/${repo}/blobs/${digest}`,
      headers: from > 0 ? { range: `bytes=${from}-` } : undefined,
    });
    if (res.status !== 200 && !(from > 0 && res.status === 206)) throw await responseError(ctx, res);
    return res;
  }

  async blobExists(repo: string, digest: Digest, scopes = [pullScope(repo)]): Promise<boolean> {
    const ctx = { registry: this.host.name, repository: repo, what: `blob ${digest}`, digest };
    const res = await this.exchange(ctx, scopes, { method: 'HEAD', path: `/v2/${repo}/blobs/${digest}` });
    await res.body.dump().catch(() => undefined);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw statusError(ctx, res.status, '');
  }

  // Put a blob in `repo`: skip it when present, mount it from a sibling repository of
  // the same registry when one is known to have it, otherwise upload it.
  async pushBlob(repo: string, desc: Descriptor, open: BlobOpener, opts: { mountFrom?: string[] } = {}): Promise<PushBlobResult> {
    const ctx = { registry: this.host.name, repository: repo, what: `blob ${desc.digest}`, digest: desc.digest };
    const scopes = [pushScope(repo)];
    if (await this.blobExists(repo, desc.digest, scopes)) return 'exists';
    let location: string | undefined;
    for (const from of (opts.mountFrom ?? []).filter((r) => r !== repo).slice(0, 3)) {
      const res = await this.exchange(ctx, [...scopes, pullScope(from)], {
        method: 'POST',
        path: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
        headers: { 'content-length': '0' },
        retry: true, // starting (or mounting) has no side effect worth protecting
      });
      await res.body.dump().catch(() => undefined);
      if (res.status === 201) return 'mounted';
      if (res.status === 202) {
        // Mount refused (source gone or not readable): the registry opened an upload instead.
        location = header(res, 'location');
        break;
      }
      debug(`mount of ${desc.digest} from ${from} into ${repo}: HTTP ${res.status}`);
    }
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        location ??= await this.startUpload(repo, ctx);
        await (desc.size <= MONOLITHIC_MAX ? this.putMonolithic(ctx, location, desc, open) : this.putChunked(ctx, location, desc, open));
        return 'uploaded';
      } catch (err) {
        lastError = err;
        location = undefined; // a failed session is abandoned; the registry expires it
        const status = err instanceof RegistryError ? err.status : undefined;
        const transient = isRetryableError(err) || (status !== undefined && (status >= 500 || status === 429));
        if (!transient || attempt === MAX_ATTEMPTS - 1) break;
        debug(`upload of ${desc.digest} to ${repo} failed (${(err as Error).message}); retrying`);
        await sleep(backoffMs(attempt));
        this.onRetry?.({ ctx, attempt: attempt + 2, reason: failureReason(err) });
      }
    }
    if (lastError instanceof ImgError) throw lastError;
    throw connectionError(ctx, this.baseUrl, lastError, isTlsMismatch(lastError), MAX_ATTEMPTS);
  }

  private async startUpload(repo: string, ctx: ErrorContext): Promise<string> {
    const res = await this.exchange(ctx, [pushScope(repo)], {
      method: 'POST',
      path: `/v2/${repo}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      retry: true,
    });
    const location = header(res, 'location');
    if (res.status === 202 && location) {
      await res.body.dump().catch(() => undefined);
      return location;
    }
    if (res.status !== 202 && res.status !== 200 && res.status !== 201) throw await responseError({ ...ctx, what: `upload of ${ctx.what ?? 'a blob'}` }, res);
    await res.body.dump().catch(() => undefined);
    // Not retried: a registry (or proxy) that answers this way will again.
    throw new RegistryError(`upload of ${ctx.what ?? 'a blob'} to ${this.host.name}/${repo}: the registry answered HTTP ${res.status}${res.status === 202 ? ' without a Location header' : ', not 202 Accepted with an upload Location'}`, {
      status: 400,
      hint: 'the registry (or a proxy in front of it) does not speak the distribution upload protocol; check the registry address',
    });
  }

  private withDigest(location: string, digest: Digest): string {
    const url = new URL(location, this.baseUrl);
    url.searchParams.set('digest', digest);
    return url.toString();
  }

  private async putMonolithic(ctx: ErrorContext, location: string, desc: Descriptor, open: BlobOpener): Promise<void> {
    const res = await this.exchange(ctx, [pushScope(ctx.repository!)], {
      method: 'PUT',
      path: this.withDigest(location, desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: (): Body => (desc.size === 0 ? Buffer.alloc(0) : open(0, desc.size - 1)),
      retry: false,
    });
    if (res.status !== 201) throw await responseError(ctx, res);
    await res.body.dump();
  }

  // PATCH with Content-Range per chunk (each answer carries the next Location), then a
  // body-less PUT ?digest= to close the session.
  private async putChunked(ctx: ErrorContext, location: string, desc: Descriptor, open: BlobOpener): Promise<void> {
    const scopes = [pushScope(ctx.repository!)];
    let loc = location;
    for (let start = 0; start < desc.size; start += CHUNK_SIZE) {
      const end = Math.min(start + CHUNK_SIZE, desc.size) - 1;
      const res = await this.exchange(ctx, scopes, {
        method: 'PATCH',
        path: loc,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${end}`,
          'content-length': String(end - start + 1),
        },
        body: () => open(start, end),
        retry: false,
      });
      if (res.status !== 202) throw await responseError(ctx, res);
      await res.body.dump();
      loc = header(res, 'location') ?? loc;
    }
    const res = await this.exchange(ctx, scopes, {
      method: 'PUT',
      path: this.withDigest(loc, desc.digest),
      headers: { 'content-length': '0' },
      retry: false,
    });
    if (res.status !== 201) throw await responseError(ctx, res);
    await res.body.dump();
  }

  // PUT a manifest or index under a tag or its digest; returns the digest the registry computed.
  async putManifest(repo: string, ref: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const ctx = { registry: this.host.name, repository: repo, what: `manifest ${ref}` };
    const res = await this.exchange(ctx, [pushScope(repo)], {
      method: 'PUT',
      path: `/v2/${repo}/manifests/${ref}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      retry: true, // idempotent: same bytes, same digest
    });
    if (res.status !== 201 && res.status !== 200) throw await responseError(ctx, res);
    await res.body.dump();
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    const announced = header(res, 'docker-content-digest');
    if (announced && announced !== digest) {
      throw new ContentError(`${this.host.name}/${repo} stored manifest ${ref} as ${announced}, expected ${digest}`, { hint: 'the registry rewrote the manifest' });
    }
    return digest;
  }
}

function contentType(res: Response): string | undefined {
  const v = header(res, 'content-type');
  return v ? v.split(';')[0].trim() : undefined;
}

// The manifest's media type: the Content-Type when it is one of the four we asked for,
// else the document's mediaType field, else its shape (OCI allows omitting both).
function manifestMediaType(ct: string | undefined, doc: { mediaType?: string; manifests?: unknown; config?: unknown; schemaVersion?: number }): string | undefined {
  const known: string[] = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest];
  if (ct && known.includes(ct)) return ct;
  if (doc.mediaType && known.includes(doc.mediaType)) return doc.mediaType;
  if (doc.schemaVersion !== 2) return undefined;
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (doc.config && typeof doc.config === 'object') return MediaType.OciManifest;
  return undefined;
}
