// Authorization and transport against real registries: challenge parsing, Basic
// (htpasswd), Bearer tokens (token server, scopes, caching, identity tokens),
// docker config.json and credential helpers, TLS trust and the plain-HTTP fallback.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { clearAuthCache, parseChallenges } from '../../lib/registry/auth';
import { RegistryClient } from '../../lib/registry/client';
import { eraseCredentials, getCredentials, storeCredentials } from '../../lib/registry/credentials';
import { isLoopback, resolveHost } from '../../lib/registry/hosts';
import { pullImage } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { closeAgents, trustedCAs } from '../../lib/registry/transport';
import { AuthError, RegistryError } from '../../lib/util/errors';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { runImg } from '../helpers/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-auth-test-'));
let n = 0;
const freshDir = (p: string): string => fs.mkdtempSync(path.join(tmp, `${p}${n++}-`));
const savedEnv = { DOCKER_CONFIG: process.env.DOCKER_CONFIG, PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS };

// A docker config dir holding `config`, made the current one.
function useDockerConfig(config: unknown): string {
  const dir = freshDir('docker-');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  process.env.DOCKER_CONFIG = dir;
  clearAuthCache();
  return dir;
}

const basicAuth = (u: string, p: string): string => Buffer.from(`${u}:${p}`).toString('base64');

afterEach(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  clearAuthCache();
  await closeAgents();
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('challenges and hosts', () => {
  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } },
    ]);
    assert.deepEqual(parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm="x", error="insufficient_scope"']), [
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'x', error: 'insufficient_scope' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="a \\"quoted\\" realm"'), [{ scheme: 'basic', params: { realm: 'a "quoted" realm' } }]);
  });

  it('uses plain HTTP for loopback registries only; Docker Hub has its own API host and config key', () => {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'localhost']) assert.equal(isLoopback(h), true, h);
    for (const h of ['registry.example.com', '10.0.0.1:5000', 'localhost.example.com']) assert.equal(isLoopback(h), false, h);
    assert.deepEqual(resolveHost('docker.io'), {
      name: 'docker.io',
      apiHost: 'registry-1.docker.io',
      configKey: 'https://index.docker.io/v1/',
      plainHttp: false,
      insecure: false,
    });
  });
});

describe('docker config.json and credential helpers', () => {
  it('reads auths (base64 auth, any spelling of the server) and identity tokens', async () => {
    useDockerConfig({
      auths: {
        'https://index.docker.io/v1/': { auth: basicAuth('hubuser', 'hub:pass') },
        'http://localhost:5000/v2/': { auth: basicAuth('local', 'pw') },
        'tok.example.com': { identitytoken: 'refresh-123' },
      },
    });
    assert.deepEqual(await getCredentials('https://index.docker.io/v1/'), { username: 'hubuser', password: 'hub:pass' });
    assert.deepEqual(await getCredentials('localhost:5000'), { username: 'local', password: 'pw' });
    assert.deepEqual(await getCredentials('tok.example.com'), { identityToken: 'refresh-123' });
    assert.equal(await getCredentials('other.example.com'), undefined);
  });

  it('talks to docker-credential-* helpers (credHelpers before credsStore) with get/store/erase', async () => {
    // A real helper program speaking the protocol, keeping its secrets in a JSON file.
    const bin = freshDir('bin-');
    const db = path.join(bin, 'db.json');
    const script = `#!/usr/bin/env node
const fs = require('fs'); const db = ${JSON.stringify(db)};
const load = () => { try { return JSON.parse(fs.readFileSync(db, 'utf8')); } catch { return {}; } };
let input = ''; process.stdin.on('data', (d) => (input += d)); process.stdin.on('end', () => {
  const all = load(); const action = process.argv[2];
  if (action === 'store') { const r = JSON.parse(input); all[r.ServerURL] = r; fs.writeFileSync(db, JSON.stringify(all)); return; }
  const key = input.trim();
  if (!all[key]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); }
  if (action === 'get') process.stdout.write(JSON.stringify(all[key]));
  if (action === 'erase') { delete all[key]; fs.writeFileSync(db, JSON.stringify(all)); }
});
`;
    for (const name of ['imgtest', 'other']) fs.writeFileSync(path.join(bin, `docker-credential-${name}`), script, { mode: 0o755 });
    process.env.PATH = `${bin}:${process.env.PATH}`;
    const dir = useDockerConfig({ credsStore: 'other', credHelpers: { 'reg.example.com': 'imgtest' } });

    assert.equal(await storeCredentials('reg.example.com', { username: 'u', password: 's3cret' }), 'docker-credential-imgtest');
    assert.deepEqual(JSON.parse(fs.readFileSync(db, 'utf8'))['reg.example.com'], { ServerURL: 'reg.example.com', Username: 'u', Secret: 's3cret' });
    assert.deepEqual(await getCredentials('reg.example.com'), { username: 'u', password: 's3cret' });
    // Nothing in plain text.
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).auths, undefined);
    // credsStore covers every other registry; "<token>" marks an identity token.
    await storeCredentials('any.example.com', { identityToken: 'idt' });
    assert.deepEqual(await getCredentials('any.example.com'), { identityToken: 'idt' });
    assert.equal(await eraseCredentials('reg.example.com'), true);
    assert.equal(await getCredentials('reg.example.com'), undefined);
    assert.equal(await eraseCredentials('reg.example.com'), false);
  });

  it('reports a helper that is not installed', async () => {
    useDockerConfig({ credsStore: 'does-not-exist' });
    await assert.rejects(getCredentials('x.example.com'), (err: Error & { hint?: string }) => {
      assert.match(err.message, /cannot run credential helper docker-credential-does-not-exist/);
      assert.match(err.hint ?? '', /install docker-credential-does-not-exist/);
      return true;
    });
  });
});

describe('Basic auth (htpasswd registry)', () => {
  let reg: Registry;
  let img: BuiltImage;
  before(async () => {
    reg = await startRegistry({ auth: 'basic' });
    img = await makeBusyboxImage({ extraFiles: { 'etc/auth': 'basic' } });
    await reg.seed('private/app', 'v1', img);
  });
  after(() => reg?.stop());

  it('refuses anonymous pulls with a login hint, and pulls with stored credentials', async () => {
    useDockerConfig({});
    await assert.rejects(pullImage(`${reg.host}/private/app:v1`, { stateDir: freshDir('state-') }), (err: Error & { hint?: string }) => {
      assert.match(err.message, new RegExp(`${reg.host}/private/app: HTTP 401`));
      assert.equal(err.hint, `run \`img login ${reg.host}\` with an account that may access private/app`);
      assert.ok(err instanceof AuthError, 'a refusal is an AuthError');
      assert.equal(err.code, 'IMG_ERR_AUTH');
      assert.equal(err.status, 401);
      return true;
    });
    useDockerConfig({ auths: { [reg.host]: { auth: basicAuth('alice', 'wonderland') } } });
    const res = await pullImage(`${reg.host}/private/app:v1`, { stateDir: freshDir('state-') });
    assert.equal(res.target.digest, img.manifest.digest);
  });

  it('reports refused credentials', async () => {
    useDockerConfig({ auths: { [reg.host]: { auth: basicAuth('alice', 'wrong') } } });
    await assert.rejects(pullImage(`${reg.host}/private/app:v1`, { stateDir: freshDir('state-') }), (err: Error) => err instanceof AuthError && /HTTP 401/.test(err.message));
  });
});

describe('Bearer token auth (token server)', () => {
  let reg: Registry;
  let img: BuiltImage;
  before(async () => {
    reg = await startRegistry({ auth: 'token', anonymousPull: true, refreshTokens: { 'refresh-alice': 'alice' } });
    img = await makeBusyboxImage({ extraFiles: { 'etc/auth': 'token' } });
    await reg.seed('library/app', 'v1', img);
  });
  after(() => reg?.stop());

  it('pulls anonymously with a pull-scoped token, fetched once for all blobs', async () => {
    useDockerConfig({});
    const before = reg.tokenServer!.requests.length;
    await pullImage(`${reg.host}/library/app:v1`, { stateDir: freshDir('state-') });
    const tokens = reg.tokenServer!.requests.slice(before);
    assert.deepEqual(tokens, [{ user: '(anonymous)', scopes: ['repository:library/app:pull'], status: 200 }]);
  });

  it('pushes with a pull,push token for the stored user, and mounts with the source scope added', async () => {
    useDockerConfig({ auths: { [reg.host]: { auth: basicAuth('alice', 'wonderland') } } });
    const state = freshDir('state-');
    await pullImage(`${reg.host}/library/app:v1`, { stateDir: state });
    const before = reg.tokenServer!.requests.length;
    await img.writeToStore(state, `${reg.host}/alice/app:v1`);
    const res = await pushImage(`${reg.host}/alice/app:v1`, { stateDir: state });
    assert.equal(res.mounted, 2);
    const scopes = reg.tokenServer!.requests.slice(before).map((r) => `${r.user} ${r.scopes.join(' ')}`);
    assert.ok(scopes.includes('alice repository:alice/app:pull,push'), scopes.join('\n'));
    assert.ok(scopes.includes('alice repository:alice/app:pull,push repository:library/app:pull'), scopes.join('\n'));
  });

  it('refuses an anonymous push with a login hint', async () => {
    useDockerConfig({});
    const state = freshDir('state-');
    await img.writeToStore(state, `${reg.host}/anon/app:v1`);
    await assert.rejects(pushImage(`${reg.host}/anon/app:v1`, { stateDir: state }), (err: Error & { hint?: string }) => {
      assert.match(err.message, /HTTP 401/);
      assert.match(err.hint ?? '', /img login/);
      assert.ok(err instanceof AuthError, 'a token server refusal is an AuthError');
      return true;
    });
  });

  it('exchanges an identity token (OAuth2 refresh token) for access', async () => {
    useDockerConfig({ auths: { [reg.host]: { identitytoken: 'refresh-alice' } } });
    const state = freshDir('state-');
    await img.writeToStore(state, `${reg.host}/alice/viaidt:v1`);
    await pushImage(`${reg.host}/alice/viaidt:v1`, { stateDir: state });
    assert.ok(reg.tokenServer!.requests.some((r) => r.user === 'alice' && r.scopes.includes('repository:alice/viaidt:pull,push')));
  });
});

describe('TLS', () => {
  let tlsReg: Registry;
  let plainReg: Registry;
  before(async () => {
    [tlsReg, plainReg] = await Promise.all([startRegistry({ tls: true }), startRegistry()]);
  });
  after(async () => {
    await tlsReg?.stop();
    await plainReg?.stop();
  });

  it('verifies certificates against the trust store (+ NODE_EXTRA_CA_CERTS), or not with --insecure-registry', async () => {
    await assert.rejects(new RegistryClient(tlsReg.host, { plainHttp: false }).ping(), (err: Error & { hint?: string }) => {
      assert.match(err.message, /TLS verification failed for 127\.0\.0\.1/);
      assert.match(err.hint ?? '', /NODE_EXTRA_CA_CERTS|--insecure-registry/);
      assert.ok(err instanceof RegistryError && !(err instanceof AuthError));
      return true;
    });
    await new RegistryClient(tlsReg.host, { plainHttp: false, insecure: true }).ping();
    process.env.NODE_EXTRA_CA_CERTS = tlsReg.tlsCert;
    await closeAgents(); // the trust list is read when the agent is made
    await new RegistryClient(tlsReg.host, { plainHttp: false }).ping();
  });

  // docker counts 127.0.0.0/8 as insecure: HTTPS first, its certificate not checked, else
  // HTTP. img asks loopback in plain HTTP first and turns to HTTPS when the server speaks TLS.
  it('img pull from a TLS registry on 127.0.0.1: HTTPS once the server says so, as docker does', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-tls-'));
    try {
      const r = await runImg(['-s', state, 'pull', `${tlsReg.host}/nothing/here:latest`], { env: { NODE_EXTRA_CA_CERTS: undefined } });
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stderr, /HTTP 400|HTTPS server|TLS verification/, r.stderr);
      assert.match(r.stderr, /not found|unknown/i, r.stderr);
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
    // The library too, with and without a given trust store.
    const client = new RegistryClient(tlsReg.host);
    await client.ping();
    assert.equal(client.baseUrl, `https://${tlsReg.host}`);
  });

  it('NODE_EXTRA_CA_CERTS is trusted even when Node did not read it at start-up (img-launch defers it)', () => {
    const cas = trustedCAs({ NODE_EXTRA_CA_CERTS: tlsReg.tlsCert! });
    assert.ok(cas?.includes(fs.readFileSync(tlsReg.tlsCert!, 'utf8')));
  });

  it('hints at --insecure-registry for a plain-HTTP registry, and falls back to HTTP with it', async () => {
    await assert.rejects(new RegistryClient(plainReg.host, { plainHttp: false }).ping(), (err: Error & { hint?: string }) => {
      assert.match(err.message, /cannot reach 127\.0\.0\.1:\d+ over HTTPS/);
      assert.match(err.hint ?? '', /--insecure-registry/);
      assert.ok(err instanceof RegistryError);
      return true;
    });
    const client = new RegistryClient(plainReg.host, { plainHttp: false, insecure: true });
    await client.ping();
    assert.equal(client.baseUrl, `http://${plainReg.host}`);
  });
});
