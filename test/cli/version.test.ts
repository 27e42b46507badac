import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { VERSION } from '../../lib/util/version';
import { REPO, runImg } from '../helpers/cli';

describe('img version', () => {
  it("prints img's fields plus the addon status and the namespace entry", async () => {
    const r = await runImg(['version'], { env: { IMG_GIT_COMMIT: '0123456789ab' } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'img:');
    assert.equal(lines[1], ` version     : v${VERSION}`);
    assert.equal(lines[2], ' git hash    : 0123456789ab');
    assert.equal(lines[3], ` node version: ${process.version}`);
    assert.match(lines[4], /^ platform    : linux\/(amd64|arm64(\/v8)?|arm\/v\d|386|ppc64le|s390x|riscv64)$/);
    assert.match(lines[5], /^ addon       : (loaded \(.*img_addon\.node\)|not loaded: .+)$/);
    assert.match(lines[6], /^ compression : gzip: (ISA-L [\d.]+|zlib [\d.]+ \(no ISA-L in this build\)).*; zstd: .*; \d+ threads$/);
    // The user-namespace entry (lib/exec/entry.ts); rootless values are checked in test/exec/entry.test.ts.
    if (process.getuid?.() === 0) {
      assert.equal(lines[7], ' namespace   : none needed (real root)');
      assert.equal(lines[8], ' id mapping  : host (real root: no user namespace needed)');
    }
    assert.match(lines[9], /^ \/proc       : (fresh|host|unknown) \(.+\)$/);
    assert.match(lines[10], /^ backend     : /);
    assert.equal(lines.length, 12);
  });

  it("--format: docker's {{.Client.Version}} and friends, img's rows by name, json; a misspelt field is an error", async () => {
    const env = { IMG_GIT_COMMIT: '0123456789ab' };
    let r = await runImg(['version', '--format', '{{.Client.Version}}'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${VERSION}\n`);
    r = await runImg(['version', '-f', '{{.Client.Os}} {{.Client.GitCommit}} {{.Version}} {{.Backend}}'], { env });
    assert.equal(r.stdout, `linux 0123456789ab v${VERSION} auto (decided by the first command that needs snapshots)\n`);
    r = await runImg(['version', '--format', 'json'], { env });
    const j = JSON.parse(r.stdout) as { Client: Record<string, string>; Version: string };
    assert.deepEqual(Object.keys(j.Client), ['Version', 'GitCommit', 'NodeVersion', 'Os', 'Arch', 'Platform']);
    assert.equal(j.Client.NodeVersion, process.version);
    assert.equal(j.Version, `v${VERSION}`);
    r = await runImg(['version', '--format', '{{.Client.Verison}}'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: template: can't evaluate field Verison in type struct — the fields here are Version, GitCommit, NodeVersion, Os, Arch, Platform/);
    assert.equal(r.stdout, '');
  });

  it('names the snapshot backend: -b, or the verdict auto cached in the state dir', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-version-'));
    try {
      let r = await runImg(['-s', state, 'version']);
      assert.match(r.stdout, / backend {5}: auto \(decided by the first command that needs snapshots\)\n/);
      r = await runImg(['-s', state, '-b', 'native', 'version']);
      assert.match(r.stdout, / backend {5}: native\n/);
      fs.mkdirSync(path.join(state, 'snapshots'));
      fs.writeFileSync(
        path.join(state, 'snapshots', 'auto.json'),
        JSON.stringify({ kernel: os.release(), userns: true, backend: 'fuse-overlayfs', reasons: { overlayfs: 'mount: EPERM' } }),
      );
      r = await runImg(['-s', state, 'version']);
      assert.match(r.stdout, / backend {5}: fuse-overlayfs \(auto; not overlayfs: mount: EPERM\)\n/);
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });

  it('says why the addon does not load', async () => {
    const r = await runImg(['version'], { env: { IMG_ADDON_PATH: '/nonexistent/img_addon.node' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / addon {7}: not loaded: .*nonexistent/);
    assert.match(r.stdout, / compression : gzip: node:zlib \(one stream\); zstd: zstd program/);
    assert.match(r.stdout, / git hash {4}: ([0-9a-f]{12}|unknown)\n/);
  });

  it("shows the checkout's commit, also in a git worktree (where .git is a file)", async (t) => {
    if (!fs.existsSync(path.join(REPO, '.git'))) return t.skip('not run from a git checkout');
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const r = await runImg(['version'], { env: { IMG_GIT_COMMIT: '' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(` git hash {4}: ${head.slice(0, 12)}\n`));
  });
});
