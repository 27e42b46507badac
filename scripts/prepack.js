#!/usr/bin/env node
'use strict';
// npm's prepack script (npm pack, npm publish): what the package records and
// carries beyond the compiled code that `prepare` writes.
//  - dist/build-info.json: the commit packed (git rev-parse HEAD, or
//    IMG_GIT_COMMIT), which lib/util/version.ts shows as `img version`'s git
//    hash where the package has no .git;
//  - prebuilds/linux-x64 and prebuilds/linux-arm64 (scripts/prebuild.js), built
//    again when missing or older than the addon's sources, so that installing
//    needs no compiler (scripts/install.js). The arm64 one needs Debian's
//    g++-aarch64-linux-gnu and zlib1g-dev:arm64 (.ci/setup-host installs them).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { prebuild, TARGETS } = require('./prebuild');

const root = path.resolve(__dirname, '..');

function packedCommit() {
  if (process.env.IMG_GIT_COMMIT) return process.env.IMG_GIT_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    process.stderr.write('prepack: not a git checkout and no IMG_GIT_COMMIT: `img version` will show git hash unknown\n');
    return 'unknown';
  }
}

// Newest modification time among the files a prebuilt is made from.
function newestSource() {
  let newest = 0;
  const visit = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['addon', 'cmake', 'CMakeLists.txt']) visit(path.join(root, p));
  return newest;
}

function isCurrent(arch) {
  try {
    return fs.statSync(path.join(root, 'prebuilds', `linux-${arch}`, 'prebuild.json')).mtimeMs >= newestSource();
  } catch {
    return false;
  }
}

const info = { version: require('../package.json').version, gitCommit: packedCommit() };
fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
fs.writeFileSync(path.join(root, 'dist', 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);

for (const arch of Object.keys(TARGETS)) {
  if (isCurrent(arch)) process.stderr.write(`prepack: prebuilds/linux-${arch} is current\n`);
  else prebuild(arch);
}
