// The single binary (`npm run build:sea`, scripts/build-sea.js), built once
// here: each command runs once (it used to run main() twice: every line
// printed twice, two builds racing on one output, RUN steps run again), and
// it enters the user namespace through the img-launch it carries.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO } from '../helpers/cli';
import { cleanup, runAsUser, skipUnlessRootless } from '../helpers/rootless';
import { setup, storedConfig, type Env } from '../builder/helpers';

function seaSkipReason(): string | false {
  try {
    require('node:sea');
  } catch {
    return `Node ${process.version} has no single executable applications (node:sea, Node >= 20.12)`;
  }
  try {
    require.resolve('postject');
  } catch {
    return 'postject (a dev dependency) is not installed: run npm ci';
  }
  if (!fs.existsSync(path.join(REPO, 'build', 'Release', 'img-launch'))) return 'the addon and img-launch are not built: run npm run build:addon';
  return skipUnlessRootless();
}

// Every line that is not empty, with how often it appears.
function repeated(text: string): string[] {
  const seen = new Map<string, number>();
  for (const l of text.split('\n').filter(Boolean)) seen.set(l, (seen.get(l) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([l, n]) => `${n}× ${l}`);
}

describe('the single binary', { skip: seaSkipReason(), timeout: 600_000 }, () => {
  let out: string;
  let bin: string;
  let e: Env;
  before(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'img-sea-'));
    fs.chmodSync(out, 0o755);
    execFileSync(process.execPath, [path.join(REPO, 'scripts', 'build-sea.js'), out], { stdio: ['ignore', 'ignore', 'pipe'] });
    bin = path.join(out, 'img');
    e = await setup({ Dockerfile: 'FROM busybox\nRUN echo ran-once\nCOPY app.txt /app.txt\n', 'app.txt': 'v1\n' });
  });
  after(async () => {
    if (e) await cleanup(e.root);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('version and ls print each line once', async () => {
    const v = await runAsUser([bin, '-s', e.state, 'version']);
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual(repeated(v.stdout), []);
    assert.match(v.stdout, /^img:\n version {5}: v\d/);
    assert.match(v.stdout, /^ addon {7}: loaded \(.*\.cache\/img\/addon-[0-9a-f]{16}\.node\)$/m);
    assert.match(v.stdout, /^ namespace {3}: entered by img-launch in [\d.]+ ms$/m);
    const ls = await runAsUser([bin, '-s', e.state, 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(repeated(ls.stdout), []);
    assert.match(ls.stdout, /^NAME\s+SIZE\s+CREATED AT\s+UPDATED AT\s+DIGEST\n.*busybox:latest/);
  });

  test('a build as the unprivileged user runs once, in the namespace img-launch enters', async () => {
    const dest = path.join(e.root, 'rootfs.tar');
    const r = await runAsUser([bin, '-s', e.state, '--debug', 'build', '--progress', 'plain', '-o', `type=tar,dest=${dest}`, e.ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.match(/^#\d+ [\d.]+ ran-once$/gm)?.length, 1, `the RUN step ran once:\n${r.stderr}`);
    assert.equal(r.stderr.match(/^DEBU user namespace: entered by img-launch/gm)?.length, 1, r.stderr);
    assert.equal(r.stderr.match(/^DEBU start-up: /gm)?.length, 1, r.stderr);
    const listing = execFileSync('tar', ['-tf', dest], { encoding: 'utf8' });
    assert.match(listing, /^app\.txt$/m);
    const b = await runAsUser([bin, '-s', e.state, 'build', '--progress', 'plain', '-t', 'sea:2', e.ctx]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, 'Building docker.io/library/sea:2\nSuccessfully built docker.io/library/sea:2\n');
    const { manifest } = await storedConfig(e, 'docker.io/library/sea:2');
    assert.equal(manifest.layers.length, 3);
  });
});
