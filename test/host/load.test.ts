// loadAddon/addonStatus: a missing addon is an ImgError that says how to build it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { addonStatus, loadAddon } from '../../lib/host';

test('the built addon loads and reports its ABI version', () => {
  assert.equal(loadAddon().abiVersion, 1);
  assert.deepEqual(addonStatus(), { loaded: true });
});

test('a missing addon gives an ImgError with the build command', () => {
  const script = `
    const h = require(${JSON.stringify(path.resolve(__dirname, '../../lib/host/index.ts'))});
    const s = h.addonStatus();
    try { h.loadAddon(); } catch (e) { console.log(JSON.stringify({ s, name: e.name, message: e.message, hint: e.hint })); }
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, IMG_ADDON_PATH: '/nonexistent/img_addon.node' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.s.loaded, false);
  assert.match(out.s.error, /No such file|cannot open/);
  assert.equal(out.name, 'ImgError');
  assert.match(out.message, /native addon is missing.*\/nonexistent\/img_addon\.node/);
  assert.match(out.hint, /npm rebuild/);
  assert.match(out.hint, /cmake-js compile/);
  assert.match(out.hint, /cmake and g\+\+/);
});
