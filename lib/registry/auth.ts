// Registry authorization: the server's 401 challenge (WWW-Authenticate) decides the scheme.
// Basic sends the stored credentials; Bearer fetches a token from the challenge's realm for
// the scopes at hand (`repository:NAME:pull`, `repository:NAME:pull,push`) and caches it
// per scope set for the life of the process.
import { AuthError, RegistryError } from '../util/errors';
import { debug } from '../util/log';
import type { AuthConfig } from './credentials';
import { getCredentials } from './credentials';
import { readErrorBody } from './errors';
import type { RegistryHost } from './hosts';
import { send, type Response } from './transport';

export interface Challenge {
  scheme: string; // lowercase: "basic", "bearer"
  params: Record<string, string>;
}

// RFC 7235 challenges: `Bearer realm="https://auth",service="reg",scope="a b"`, possibly several.
export function parseChallenges(values: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const value of Array.isArray(values) ? values : values ? [values] : []) {
    let current: Challenge | undefined;
    let i = 0;
    const skip = (chars: string): void => {
      while (i < value.length && chars.includes(value[i])) i++;
    };
    const token = (): string => {
      const start = i;
      while (i < value.length && !' \t,="'.includes(value[i])) i++;
      return value.slice(start, i);
    };
    while (i < value.length) {
      skip(' \t,');
      const name = token();
      if (!name) break;
      skip(' \t');
      if (value[i] !== '=') {
        current = { scheme: name.toLowerCase(), params: {} };
        out.push(current);
        continue;
      }
      i++; // '='
      skip(' \t');
      let v = '';
      if (value[i] === '"') {
        i++;
        while (i < value.length && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < value.length) i++;
          v += value[i++];
        }
        i++; // closing quote
      } else {
        v = token();
      }
      if (current) current.params[name.toLowerCase()] = v;
    }
  }
  return out;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

// A token response is a small JSON document; a bigger one is not read.
const TOKEN_LIMIT = 1 << 20;

const basicHeader = (a: AuthConfig): string =>
  `Basic ${Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64')}`;

// One per registry host per process (see authorizerFor).
export class Authorizer {
  private challenge?: Challenge;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();
  private creds?: Promise<AuthConfig | undefined>;

  constructor(
    readonly host: RegistryHost,
    // Explicit credentials (login) instead of the docker config.
    private readonly explicit?: AuthConfig,
  ) {}

  private credentials(): Promise<AuthConfig | undefined> {
    this.creds ??= this.explicit ? Promise.resolve(this.explicit) : getCredentials(this.host.configKey);
    return this.creds;
  }

  // The Authorization header to send for these scopes, if we already know the scheme.
  async authorization(scopes: string[]): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') {
      const c = await this.credentials();
      return c?.username !== undefined ? basicHeader(c) : undefined;
    }
    if (this.challenge.scheme === 'bearer') {
      const cached = this.tokens.get(scopeKey(scopes));
      if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.value}`;
      return `Bearer ${await this.fetchToken(scopes)}`;
    }
    return undefined;
  }

  // After a 401: learn the challenge, fetch what it asks for. Returns the scopes to retry
  // with (the server may name a scope we did not), or undefined when retrying cannot help.
  async handleUnauthorized(res: Response, scopes: string[], hadAuthorization: boolean): Promise<string[] | undefined> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const chosen = bearer ?? basic;
    if (!chosen) return undefined;
    const wanted = [...scopes];
    if (bearer?.params.scope) {
      for (const s of bearer.params.scope.split(' ')) if (s && !wanted.includes(s)) wanted.push(s);
    }
    const sameScheme = this.challenge?.scheme === chosen.scheme;
    this.challenge = chosen;
    if (chosen.scheme === 'basic') {
      if (hadAuthorization && sameScheme) return undefined; // our credentials were refused
      const c = await this.credentials();
      return c?.username !== undefined ? wanted : undefined;
    }
    // Bearer: a token we sent was refused (expired, revoked): fetch a fresh one, once
    // (the caller retries a single time).
    if (hadAuthorization && sameScheme) this.tokens.delete(scopeKey(wanted));
    await this.fetchToken(wanted);
    return wanted;
  }

  // Concurrent requests for the same scopes (parallel blobs) share one token request.
  private fetchToken(scopes: string[]): Promise<string> {
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return Promise.resolve(cached.value);
    let p = this.pending.get(key);
    if (!p) {
      p = this.requestToken(scopes, key).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async requestToken(scopes: string[], key: string): Promise<string> {
    const params = this.challenge!.params;
    if (!params.realm) {
      throw new RegistryError(`${this.host.name} sent a Bearer challenge without a realm`, { hint: 'the registry\'s auth configuration is broken' });
    }
    const creds = await this.credentials();
    const realm = new URL(params.realm);
    let res: Response;
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant, as docker does for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'img', access_type: 'offline' });
      if (params.service) form.set('service', params.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await send({
        method: 'POST',
        url: realm.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: () => form.toString(),
        retry: true,
      });
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      if (creds?.username) realm.searchParams.set('account', creds.username);
      const headers: Record<string, string> = {};
      if (creds?.username !== undefined) headers.authorization = basicHeader(creds);
      res = await send({ method: 'GET', url: realm.toString(), headers });
    }
    if (res.status !== 200) {
      const detail = await readErrorBody(res);
      const message = `authentication to ${this.host.name} failed: token server ${realm.origin}${realm.pathname} answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`;
      if (res.status === 401 || res.status === 403) {
        const hint = creds ? `the stored credentials were refused; run \`img login ${this.host.name}\` again` : `run \`img login ${this.host.name}\``;
        throw new AuthError(message, { status: res.status, hint });
      }
      throw new RegistryError(message, { status: res.status, hint: 'the token server failed; retry later' });
    }
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string } | null;
    try {
      body = (await res.body.json(TOKEN_LIMIT)) as typeof body;
    } catch (err) {
      throw new RegistryError(`token server ${realm.origin}${realm.pathname} for ${this.host.name} answered with no valid token: ${(err as Error).message}`, {
        hint: 'the registry\'s auth service is misconfigured',
        cause: err,
      });
    }
    const value = body?.token || body?.access_token;
    if (!value || typeof value !== 'string') throw new RegistryError(`token server for ${this.host.name} returned no token`, { hint: 'the registry\'s auth service is misconfigured' });
    // Tokens without expires_in are valid at least 60 s by the token spec; keep a margin.
    const ttl = Math.max(Number(body!.expires_in) || 60, 10) * 1000;
    this.tokens.set(key, { value, expiresAt: Date.now() + ttl - 5_000 });
    debug(`got token for ${this.host.name} scopes [${scopes.join(' ')}] (expires in ${ttl / 1000}s)`);
    return value;
  }
}

function scopeKey(scopes: string[]): string {
  return [...scopes].sort().join(' ');
}

const authorizers = new Map<string, Authorizer>();

// Shared per registry so tokens are reused across the blobs of one pull or push.
export function authorizerFor(host: RegistryHost): Authorizer {
  let a = authorizers.get(host.name);
  if (!a) {
    a = new Authorizer(host);
    authorizers.set(host.name, a);
  }
  return a;
}

// Forget tokens, challenges and credentials (tests; a process that changed its docker config).
export function clearAuthCache(): void {
  authorizers.clear();
}
