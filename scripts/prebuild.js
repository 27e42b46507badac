#!/usr/bin/env node
'use strict';
// Builds the prebuilt native parts the npm package carries, so that installing
// it needs no compiler (scripts/install.js, lib/host addonPath):
//
//   prebuilds/linux-x64/{img_addon.node,img-launch,prebuild.json}
//   prebuilds/linux-arm64/…   cross-compiled with Debian's g++-aarch64-linux-gnu
//                             (cmake/aarch64-linux-gnu.cmake)
//
//   node scripts/prebuild.js [x64|arm64]...   (default: both)
//
// Both are built on this host (Debian 12) from the same CMakeLists.txt as a
// source build, then stripped. What a prebuilt needs from the system: glibc,
// libstdc++ (as Node itself), libz.so.1, and when present libisal.so.2 /
// libzstd.so.1 (opened at run time). The oldest glibc and libstdc++ it loads
// with are read from its symbol versions into prebuild.json: glibc 2.34 and
// GLIBCXX_3.4.30 from Debian 12 (Ubuntu 22.04 and later). Linking libstdc++ in
// statically was tried and dropped: 1.3 MB more per file, and it raised the
// glibc needed to 2.36 (arc4random, _dl_find_object), shutting out Ubuntu 22.04.
// scripts/install.js loads the prebuilt before trusting it and builds from
// source where it does not load.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');

// Node's process.arch → how each toolchain names it.
const TARGETS = {
  x64: { machine: 'x86_64', toolchain: null, strip: 'strip', elfMachine: 'Advanced Micro Devices X86-64' },
  arm64: { machine: 'aarch64', toolchain: 'cmake/aarch64-linux-gnu.cmake', strip: 'aarch64-linux-gnu-strip', elfMachine: 'AArch64' },
};
const hostArch = process.arch;

function which(program) {
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && fs.existsSync(path.join(dir, program))) return path.join(dir, program);
  }
  return undefined;
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

// Highest PREFIX_x.y symbol version ELF files ask for (GLIBC_, GLIBCXX_): the
// oldest library version they load with.
function minVersion(files, prefix) {
  const versions = [];
  for (const file of files) {
    const out = execFileSync('readelf', ['-V', '--wide', file], { encoding: 'utf8' });
    for (const m of out.matchAll(new RegExp(`Name: ${prefix}_([0-9.]+)`, 'g'))) versions.push(m[1]);
  }
  return versions.sort(compareVersions).pop();
}

function elfMachine(file) {
  const out = execFileSync('readelf', ['-h', file], { encoding: 'utf8' });
  return /Machine:\s+(.*)/.exec(out)?.[1].trim();
}

function prebuild(arch) {
  const target = TARGETS[arch];
  if (!target) throw new Error(`prebuild: unknown architecture ${arch} (known: ${Object.keys(TARGETS).join(', ')})`);
  const crossCompiler = `${target.machine}-linux-gnu-g++`;
  if (arch !== hostArch && !which(crossCompiler)) {
    throw new Error(`prebuild: building for linux-${arch} needs ${crossCompiler} (Debian: apt-get install g++-${target.machine.replace(/_/g, '-')}-linux-gnu)`);
  }
  const buildDir = path.join(root, 'build', `prebuild-linux-${arch}`);
  fs.rmSync(buildDir, { recursive: true, force: true }); // nothing cached from another configuration
  const args = ['compile', '--out', buildDir, '--parallel', String(require('node:os').availableParallelism())];
  if (arch !== hostArch) args.push(`--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, target.toolchain)}`);
  const started = Date.now();
  execFileSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), ...args], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const outDir = path.join(root, 'prebuilds', `linux-${arch}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const files = ['img_addon.node', 'img-launch'];
  const strip = arch === hostArch ? 'strip' : target.strip;
  for (const name of files) {
    const dest = path.join(outDir, name);
    fs.copyFileSync(path.join(buildDir, 'Release', name), dest);
    execFileSync(strip, ['--strip-unneeded', dest]);
    const machine = elfMachine(dest);
    if (machine !== target.elfMachine) throw new Error(`prebuild: ${dest} is built for ${machine}, not ${target.elfMachine}`);
  }
  const paths = files.map((f) => path.join(outDir, f));
  const glibc = minVersion(paths, 'GLIBC');
  const info = { platform: 'linux', arch, libc: 'glibc', glibc, glibcxx: minVersion(paths, 'GLIBCXX'), napi: 8, files };
  fs.writeFileSync(path.join(outDir, 'prebuild.json'), `${JSON.stringify(info, null, 2)}\n`);
  const sizes = files.map((f) => `${f} ${(fs.statSync(path.join(outDir, f)).size / 1024).toFixed(0)} KiB`).join(', ');
  process.stderr.write(`prebuild: linux-${arch} (glibc ≥ ${glibc}) in ${((Date.now() - started) / 1000).toFixed(1)} s: ${sizes}\n`);
}

module.exports = { prebuild, TARGETS };

if (require.main === module) {
  const arches = process.argv.slice(2);
  for (const arch of arches.length ? arches : Object.keys(TARGETS)) prebuild(arch);
}
