// Credentials in docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json):
// `auths` entries (base64 "user:password" or an identity token), and credential helpers
// (`credHelpers` per registry, `credsStore` for all) run as `docker-credential-NAME get|store|erase`
// with the server URL or a JSON record on stdin.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HostError, isErrno, UsageError } from '../util/errors';
import { debug } from '../util/log';
import { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY, normalizeServer } from './hosts';

export interface AuthConfig {
  username?: string;
  password?: string;
  // OAuth2 refresh token exchanged at the token endpoint (docker's `identitytoken`).
  identityToken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  email?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [other: string]: unknown;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return path.join(env.HOME || os.homedir(), '.docker');
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(dockerConfigDir(env), 'config.json');
}

function readConfig(file: string): DockerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {};
    throw new HostError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'check the file permissions', cause: err });
  }
  if (!text.trim()) return {};
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix or remove the file', cause: err });
  }
}

// Written like docker does: 0600, atomically, keeping every key we do not manage.
function writeConfig(file: string, config: DockerConfig): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

// The `auths` key a registry matches: exact, or the same registry spelled another way
// ("https://localhost:5000", "localhost:5000/v2/", Docker Hub's several names).
function findAuthKey(auths: Record<string, AuthEntry>, configKey: string): string | undefined {
  if (configKey in auths) return configKey;
  const want = normalizeServer(configKey);
  return Object.keys(auths).find((k) => normalizeServer(k) === want);
}

function decodeEntry(entry: AuthEntry, key: string): AuthConfig | undefined {
  const out: AuthConfig = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new UsageError(`invalid auth entry for ${key} in docker config`, { hint: `run \`img login ${key}\` again` });
    out.username = decoded.slice(0, colon);
    out.password = decoded.slice(colon + 1);
  } else if (entry.username) {
    out.username = entry.username;
    out.password = entry.password;
  }
  if (entry.identitytoken) out.identityToken = entry.identitytoken;
  return out.username || out.identityToken ? out : undefined;
}

// The helper configured for a registry: credHelpers first (any spelling of the registry), then credsStore.
function helperFor(config: DockerConfig, configKey: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  const key = configKey in helpers ? configKey : Object.keys(helpers).find((k) => normalizeServer(k) === normalizeServer(configKey));
  if (key) return helpers[key];
  return config.credsStore || undefined;
}

function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) =>
      reject(
        new HostError(`cannot run credential helper ${bin}: ${e.message}`, {
          hint: `install ${bin} or remove "${helper}" from credsStore/credHelpers in ${dockerConfigPath()}`,
          cause: e,
        }),
      ),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => undefined); // helper may exit before reading
    child.stdin.end(input);
  });
}

const NOT_FOUND = /credentials not found/i;

async function helperGet(helper: string, serverURL: string): Promise<AuthConfig | undefined> {
  const res = await runHelper(helper, 'get', serverURL);
  const text = `${res.stdout}${res.stderr}`.trim();
  if (res.code !== 0) {
    if (NOT_FOUND.test(text)) return undefined;
    throw new HostError(`credential helper docker-credential-${helper} failed for ${serverURL}: ${text || `exit ${res.code}`}`, {
      hint: 'check the helper works: echo SERVER | docker-credential-NAME get',
    });
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(res.stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new HostError(`credential helper docker-credential-${helper} printed invalid JSON for ${serverURL}`, { hint: 'check the helper' });
  }
  if (!parsed.Secret) return undefined;
  // Helpers mark an identity token with the user name "<token>".
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: parsed.Username, password: parsed.Secret };
}

// Credentials for a registry (its config key, see hosts.ts), or undefined for anonymous access.
export async function getCredentials(configKey: string, env: NodeJS.ProcessEnv = process.env): Promise<AuthConfig | undefined> {
  const config = readConfig(dockerConfigPath(env));
  const helper = helperFor(config, configKey);
  if (helper) {
    const viaHelper = await helperGet(helper, configKey);
    if (viaHelper) return viaHelper;
    // Helpers with nothing stored fall back to the file, as docker does.
  }
  const key = findAuthKey(config.auths ?? {}, configKey);
  if (!key) return undefined;
  debug(`using credentials for ${key} from ${dockerConfigPath(env)}`);
  return decodeEntry(config.auths![key], key);
}

export function configKeyForServer(server: string): string {
  const name = normalizeServer(server);
  return name === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : name;
}

// Save after a successful login: through the helper when one is configured, else in `auths`.
export async function storeCredentials(configKey: string, auth: AuthConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = dockerConfigPath(env);
  const config = readConfig(file);
  const helper = helperFor(config, configKey);
  if (helper) {
    const record = auth.identityToken
      ? { ServerURL: configKey, Username: '<token>', Secret: auth.identityToken }
      : { ServerURL: configKey, Username: auth.username ?? '', Secret: auth.password ?? '' };
    const res = await runHelper(helper, 'store', JSON.stringify(record));
    if (res.code !== 0) {
      throw new HostError(`credential helper docker-credential-${helper} could not store credentials for ${configKey}: ${(res.stdout + res.stderr).trim()}`, {
        hint: 'check the helper, or remove credsStore/credHelpers to keep credentials in config.json',
      });
    }
    // A stale plain-text entry would shadow nothing but would leak; drop it.
    const auths = config.auths ?? {};
    const key = findAuthKey(auths, configKey);
    if (key) {
      delete auths[key];
      writeConfig(file, config);
    }
    return `docker-credential-${helper}`;
  }
  const auths = (config.auths ??= {});
  const old = findAuthKey(auths, configKey);
  if (old && old !== configKey) delete auths[old];
  const entry: AuthEntry = {};
  if (auth.identityToken) entry.identitytoken = auth.identityToken;
  else entry.auth = Buffer.from(`${auth.username ?? ''}:${auth.password ?? ''}`).toString('base64');
  auths[configKey] = entry;
  writeConfig(file, config);
  return file;
}

// Remove stored credentials; false when there were none.
export async function eraseCredentials(configKey: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = dockerConfigPath(env);
  const config = readConfig(file);
  let found = false;
  const helper = helperFor(config, configKey);
  if (helper) {
    const res = await runHelper(helper, 'erase', configKey);
    if (res.code === 0) found = true;
    else if (!NOT_FOUND.test(res.stdout + res.stderr)) {
      throw new HostError(`credential helper docker-credential-${helper} could not erase credentials for ${configKey}: ${(res.stdout + res.stderr).trim()}`, {
        hint: 'check the helper',
      });
    }
  }
  const auths = config.auths ?? {};
  const key = findAuthKey(auths, configKey);
  if (key) {
    delete auths[key];
    writeConfig(file, config);
    found = true;
  }
  return found;
}

// What config.json configures, without any secret: for `img doctor`.
export interface CredentialsSummary {
  file: string;
  registries: string[]; // `auths` keys
  credHelpers: Record<string, string>; // registry → helper name
  credsStore?: string;
}

export function configuredCredentials(env: NodeJS.ProcessEnv = process.env): CredentialsSummary {
  const file = dockerConfigPath(env);
  const config = readConfig(file);
  return { file, registries: Object.keys(config.auths ?? {}).sort(), credHelpers: config.credHelpers ?? {}, credsStore: config.credsStore || undefined };
}
