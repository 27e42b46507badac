import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VERSION } from '../../lib/version';
import { runImg } from '../helpers/cli';

describe('img version', () => {
  it("prints img's fields plus the addon status", async () => {
    const r = await runImg(['version'], { env: { IMG_GIT_COMMIT: '0123456789ab' } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'img:');
    assert.equal(lines[1], ` version     : v${VERSION}`);
    assert.equal(lines[2], ' git hash    : 0123456789ab');
    assert.equal(lines[3], ` node version: ${process.version}`);
    assert.match(lines[4], /^ platform    : linux\/(amd64|arm64(\/v8)?|arm\/v\d|386|ppc64le|s390x|riscv64)$/);
    assert.match(lines[5], /^ addon       : (loaded \(.*img_addon\.node\)|not loaded: .+)$/);
    assert.equal(lines.length, 7);
  });

  it('says why the addon does not load', async () => {
    const r = await runImg(['version'], { env: { IMG_ADDON_PATH: '/nonexistent/img_addon.node' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / addon {7}: not loaded: .*nonexistent/);
    assert.match(r.stdout, / git hash {4}: ([0-9a-f]{12}|unknown)\n/);
  });
});
