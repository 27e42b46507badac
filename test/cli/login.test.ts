// `img login` / `img logout` against real Basic (htpasswd) and Bearer (token) registries,
// with DOCKER_CONFIG pointed at a temporary directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, runImg } from '../helpers/cli';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cli-login-'));
let n = 0;
const fresh = (p: string): string => fs.mkdtempSync(path.join(tmp, `${p}${n++}-`));
const readConfig = (dir: string): { auths?: Record<string, { auth?: string }> } => JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));

for (const auth of ['basic', 'token'] as const) {
  describe(`img login / logout (${auth === 'basic' ? 'Basic auth' : 'Bearer token'} registry)`, () => {
    let reg: Registry;
    let img: BuiltImage;
    before(async () => {
      reg = await startRegistry({ auth });
      img = await makeBusyboxImage({ extraFiles: { 'etc/login': auth } });
      await reg.seed('private/app', 'v1', img);
    });
    after(() => reg?.stop());

    it('refuses a wrong password and saves nothing', async () => {
      const dc = fresh('docker-');
      const res = await runImg(['login', '-u', 'alice', '--password-stdin', reg.host], { env: { DOCKER_CONFIG: dc }, input: 'not-it\n' });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, new RegExp(`Error: login to ${reg.host} failed: unauthorized: incorrect username or password \\(HTTP 401\\) — check the username and password; nothing was saved`));
      assert.equal(fs.existsSync(path.join(dc, 'config.json')), false);
    });

    it('logs in (verified against the registry), pulls with the saved credentials, logs out', async () => {
      const dc = fresh('docker-');
      const env = { DOCKER_CONFIG: dc };
      const state = fresh('state-');
      const denied = await runImg(['--state', state, 'pull', `${reg.host}/private/app:v1`], { env });
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, new RegExp(`HTTP 401.* — run \`img login ${reg.host}\``));

      const login = await runImg(['login', '-u', 'alice', '--password-stdin', reg.host], { env, input: 'wonderland\n' });
      assert.equal(login.code, 0, login.stderr);
      assert.equal(login.stdout, 'Login Succeeded\n');
      assert.match(login.stderr, /WARNING! Your password will be stored unencrypted/);
      assert.deepEqual(readConfig(dc), { auths: { [reg.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } });
      assert.equal(fs.statSync(path.join(dc, 'config.json')).mode & 0o777, 0o600);

      const pull = await runImg(['--state', state, 'pull', `${reg.host}/private/app:v1`], { env });
      assert.equal(pull.code, 0, pull.stderr);
      assert.match(pull.stdout, new RegExp(`Digest: ${img.manifest.digest}`));

      // No flags: the stored credentials are checked again.
      const again = await runImg(['login', reg.host], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'Authenticating with existing credentials...\nLogin Succeeded\n');

      const logout = await runImg(['logout', reg.host], { env });
      assert.equal(logout.code, 0, logout.stderr);
      assert.equal(logout.stdout, `Removing login credentials for ${reg.host}\n`);
      assert.deepEqual(readConfig(dc).auths, {});
      const twice = await runImg(['logout', reg.host], { env });
      assert.equal(twice.stdout, `Not logged in to ${reg.host}\n`);
    });
  });
}

describe('img login on a terminal', () => {
  let reg: Registry;
  before(async () => {
    reg = await startRegistry({ auth: 'basic' });
  });
  after(() => reg?.stop());

  it('prompts for the username and, without echo, the password', async () => {
    // script(1) (util-linux) gives the CLI a pseudo-terminal.
    const dc = fresh('docker-');
    const argv = [process.execPath, '--import', 'tsx', path.join(REPO, 'lib', 'cli', 'main.ts'), 'login', reg.host];
    const child = spawn('script', ['-qec', argv.map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd: REPO, env: { ...process.env, DOCKER_CONFIG: dc } });
    let out = '';
    const answered = new Set<string>();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const [promptText, answer] of [['Username: ', 'alice\r'], ['Password: ', 'wonderland\r']]) {
        if (out.includes(promptText) && !answered.has(promptText)) {
          answered.add(promptText);
          child.stdin.write(answer);
        }
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, out);
    assert.match(out, /Username: alice\r?\n/);
    assert.doesNotMatch(out, /wonderland/, 'the password is not echoed');
    assert.match(out, /Login Succeeded/);
    assert.equal(readConfig(dc).auths?.[reg.host]?.auth, Buffer.from('alice:wonderland').toString('base64'));
  });
});

describe('img login flag checks', () => {
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('rejects conflicting or missing credentials flags without touching the network', async () => {
    const env = { DOCKER_CONFIG: fresh('docker-') };
    const both = await runImg(['login', '-u', 'a', '-p', 'b', '--password-stdin', '127.0.0.1:1'], { env, input: 'x' });
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /Error: --password and --password-stdin are mutually exclusive/);
    const noUser = await runImg(['login', '--password-stdin', '127.0.0.1:1'], { env, input: 'x' });
    assert.match(noUser.stderr, /Error: Must provide --user with --password-stdin/);
    const nothing = await runImg(['login', '127.0.0.1:1'], { env });
    assert.notEqual(nothing.code, 0);
    assert.match(nothing.stderr, /Error: Username is required — img login -u USER --password-stdin 127\.0\.0\.1:1/);
  });

  it('names an unreachable registry', async () => {
    const res = await runImg(['login', '-u', 'a', '--password-stdin', '127.0.0.1:1'], { env: { DOCKER_CONFIG: fresh('docker-') }, input: 'x' });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /Error: cannot reach 127\.0\.0\.1:1 \(http:\/\/127\.0\.0\.1:1\/v2\/\).*ECONNREFUSED/);
  });
});
