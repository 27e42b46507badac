#!/usr/bin/env node
'use strict';
// npm's install script. The package carries prebuilt native parts
// (prebuilds/linux-x64, prebuilds/linux-arm64; scripts/prebuild.js); when the
// one for this platform loads here, nothing is compiled. Otherwise the addon and
// img-launch are built from source into build/Release with cmake-js, which says
// why and what that needs. lib/host (addonPath) and bin/img look in the same
// two places: build/Release first (built on this machine), then the prebuilt.
//
// IMG_BUILD_FROM_SOURCE=1 skips the prebuilt (a developer's checkout, or a
// system whose prebuilt loads but misbehaves).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const target = `${process.platform}-${process.arch}`;
const prebuiltDir = path.join(root, 'prebuilds', target);

// Why the prebuilt cannot be used here, or undefined when it loads and runs.
function prebuiltProblem() {
  if (process.env.IMG_BUILD_FROM_SOURCE === '1') return 'IMG_BUILD_FROM_SOURCE=1';
  const available = fs.existsSync(path.join(root, 'prebuilds')) ? fs.readdirSync(path.join(root, 'prebuilds')) : [];
  if (!available.includes(target)) {
    return `no prebuilt for ${target} (this package has: ${available.join(', ') || 'none'})`;
  }
  try {
    process.dlopen({ exports: {} }, path.join(prebuiltDir, 'img_addon.node'));
  } catch (err) {
    const needs = readNeeds();
    return `the prebuilt addon for ${target}${needs} does not load: ${String(err.message).split('\n')[0]}`;
  }
  // img-launch runs before Node on every command; a dynamic-linker failure
  // (an older glibc) exits 127 before it prints its answer.
  const launch = spawnSync(path.join(prebuiltDir, 'img-launch'), ['decide', 'version'], { encoding: 'utf8' });
  if (launch.error || launch.status !== 0) {
    const why = launch.error ? launch.error.message : (launch.stderr || '').trim().split('\n')[0] || `exit status ${launch.status}`;
    return `the prebuilt img-launch for ${target}${readNeeds()} does not run: ${why}`;
  }
  return undefined;
}

function readNeeds() {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(prebuiltDir, 'prebuild.json'), 'utf8'));
    return ` (needs glibc ≥ ${info.glibc}, libstdc++ with GLIBCXX_${info.glibcxx})`;
  } catch {
    return '';
  }
}

function buildFromSource(why) {
  process.stderr.write(
    `img: ${why}; building the native addon and img-launch from source with cmake-js ` +
      '(needs cmake, make, g++, zlib headers; Debian: apt-get install cmake g++ make zlib1g-dev)\n',
  );
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    process.stderr.write('img: cmake-js is not installed (it is an optional dependency): npm install cmake-js node-addon-api, then npm rebuild img\n');
    process.exit(1);
  }
  const res = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' });
  process.exit(res.status ?? 1);
}

const problem = prebuiltProblem();
if (problem) buildFromSource(problem);
