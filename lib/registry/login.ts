// `img login`: gather credentials (flags, stdin, prompt, or already stored), verify them
// with GET /v2/ through the registry's own challenge, and only then save them.
import { AbortError, AuthError, findError, UsageError } from '../util/errors';
import { Authorizer } from './auth';
import { RegistryClient } from './client';
import { configKeyForServer, dockerConfigPath, getCredentials, storeCredentials, type AuthConfig } from './credentials';
import { resolveHost } from './hosts';
import { closeAgents } from './transport';

export interface LoginOptions {
  user?: string;
  password?: string;
  passwordStdin?: boolean;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}

// One line from a terminal; with echo off for passwords.
function prompt(question: string, opts: Required<Pick<LoginOptions, 'stdin' | 'err'>>, hidden: boolean): Promise<string> {
  const { stdin, err } = opts;
  return new Promise((resolve, reject) => {
    let line = '';
    const raw = hidden && typeof stdin.setRawMode === 'function';
    // Echo off before the prompt appears, so even an answer typed (or pasted) at once is hidden.
    if (raw) stdin.setRawMode!(true);
    err.write(question);
    const done = (value: string | Error): void => {
      stdin.removeListener('data', onData);
      if (raw) stdin.setRawMode!(false);
      (stdin as NodeJS.ReadStream).pause?.();
      if (hidden) err.write('\n');
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return done(line);
        if (ch === '\u0003') return done(new AbortError('login aborted'));
        if (ch === '\u007f') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on('data', onData);
    (stdin as NodeJS.ReadStream).resume?.();
  });
}

export async function login(server: string, opts: LoginOptions): Promise<void> {
  const stdin = opts.stdin ?? process.stdin;
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const host = resolveHost(server);
  const key = configKeyForServer(server);
  if (opts.password !== undefined && opts.passwordStdin) {
    throw new UsageError('--password and --password-stdin are mutually exclusive', { hint: 'use one of them' });
  }
  if (opts.password !== undefined) err.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');

  let auth: AuthConfig | undefined;
  let fromStore = false;
  let user = opts.user;
  let password = opts.password;
  if (opts.passwordStdin) {
    if (!user) throw new UsageError('Must provide --user with --password-stdin', { hint: `img login -u USER --password-stdin ${server}` });
    password = (await readAll(stdin)).replace(/\r?\n$/, '');
  }
  if (user === undefined && password === undefined) {
    // No flags: verify what is stored, as docker does, before asking.
    const stored = await getCredentials(key);
    if (stored) {
      auth = stored;
      fromStore = true;
      out.write('Authenticating with existing credentials...\n');
    }
  }
  if (!auth) {
    if (user === undefined) {
      if (!stdin.isTTY) throw new UsageError('Username is required', { hint: `img login -u USER --password-stdin ${server}` });
      user = (await prompt('Username: ', { stdin, err }, false)).trim();
    }
    if (!user) throw new UsageError('Username is required', { hint: `img login -u USER ${server}` });
    if (password === undefined) {
      if (!stdin.isTTY) throw new UsageError('Password is required', { hint: `pipe it with: img login -u ${user} --password-stdin ${server}` });
      password = await prompt('Password: ', { stdin, err }, true);
    }
    if (!password) throw new UsageError('Password is required', { hint: `img login -u ${user} --password-stdin ${server}` });
    auth = { username: user, password };
  }

  const client = new RegistryClient(server, { authorizer: new Authorizer(host, auth) });
  try {
    await client.ping();
  } catch (e) {
    // Refused by the registry or by its token server: the credentials are wrong.
    const refused = findError(e, AuthError);
    if (refused) {
      throw new AuthError(`login to ${host.name} failed: unauthorized: incorrect username or password (HTTP ${refused.status})`, {
        status: refused.status,
        hint: fromStore ? `the stored credentials are no longer valid; run \`img login -u USER ${server}\`` : 'check the username and password; nothing was saved',
        cause: e,
      });
    }
    throw e;
  } finally {
    await closeAgents();
  }
  if (!fromStore) {
    const where = await storeCredentials(key, auth);
    if (where === dockerConfigPath()) {
      err.write(`WARNING! Your password will be stored unencrypted in ${where}.\nConfigure a credential helper to remove this warning.\n`);
    }
  }
  out.write('Login Succeeded\n');
}
