// loadAddon/addonStatus: a missing addon is an ImgError that says how to build it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
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
  assert.match(out.hint, /IMG_BUILD_FROM_SOURCE=1 npm rebuild img/);
  assert.match(out.hint, /npm run build:addon/);
  assert.match(out.hint, /cmake, make, g\+\+ and zlib headers/);
});

test('a prebuilt addon that does not load says what it needs from the system', () => {
  // A prebuilt as scripts/prebuild.js leaves it, with bytes no dynamic linker takes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-prebuilt-'));
  try {
    fs.writeFileSync(path.join(dir, 'img_addon.node'), 'not an ELF file');
    fs.writeFileSync(path.join(dir, 'prebuild.json'), JSON.stringify({ platform: 'linux', arch: process.arch, libc: 'glibc', glibc: '2.34', glibcxx: '3.4.30' }));
    const script = `
      const h = require(${JSON.stringify(path.resolve(__dirname, '../../lib/host/index.ts'))});
      try { h.loadAddon(); } catch (e) { console.log(JSON.stringify({ message: e.message, hint: e.hint, detail: e.detail })); }
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, IMG_ADDON_PATH: path.join(dir, 'img_addon.node') },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.message, /does not load: .*img-prebuilt-.*img_addon\.node/);
    assert.match(out.detail, /invalid ELF header|file too short/);
    assert.match(out.hint, /^this prebuilt addon needs glibc 2\.34 or later and libstdc\+\+ with GLIBCXX_3\.4\.30; build it from source with `IMG_BUILD_FROM_SOURCE=1 npm rebuild img`/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
