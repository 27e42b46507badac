#!/usr/bin/env node
'use strict';
// Builds the single-file `img` binary with Node's single executable applications:
// esbuild bundles the CLI into one CommonJS file (scripts/bundle.js, the entry
// lib/cli/start.ts) and, apart, the small entry that runs first
// (lib/cli/sea-main.ts: it execs img-launch when the command needs the user
// namespace, else runs the CLI bundle); node makes a SEA blob of the entry with
// the CLI bundle, the native addon and img-launch as assets (unpacked by
// lib/host/index.ts), and postject injects the blob into a copy of the node binary.
//   npm run build:sea                    →  build/sea/img
//   node scripts/build-sea.js OUTDIR     →  OUTDIR/img
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.resolve(process.argv[2] || path.join(root, 'build', 'sea'));
fs.mkdirSync(out, { recursive: true });
const addon = path.join(root, 'build', 'Release', 'img_addon.node');
const launcher = path.join(root, 'build', 'Release', 'img-launch');
for (const f of [addon, launcher]) {
  if (!fs.existsSync(f)) {
    console.error(`missing ${f}: run \`npm run build:addon\` first`);
    process.exit(1);
  }
}

const sea = { 'process.env.IMG_SEA': '"1"' };
require('./bundle').bundle(path.join(out, 'img.cjs'), sea);
require('./bundle').bundle(path.join(out, 'sea-main.cjs'), sea, path.join(root, 'lib', 'cli', 'sea-main.ts'));

const config = {
  main: path.join(out, 'sea-main.cjs'),
  output: path.join(out, 'sea-prep.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  assets: { 'img.cjs': path.join(out, 'img.cjs'), 'img_addon.node': addon, 'img-launch': launcher },
};
fs.writeFileSync(path.join(out, 'sea-config.json'), JSON.stringify(config, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', path.join(out, 'sea-config.json')], { stdio: 'inherit' });

const bin = path.join(out, 'img');
fs.copyFileSync(process.execPath, bin);
fs.chmodSync(bin, 0o755);
execFileSync(
  process.execPath,
  [require.resolve('postject/dist/cli.js'), bin, 'NODE_SEA_BLOB', config.output, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
  { stdio: 'inherit' },
);
console.log(`built ${path.relative(process.cwd(), bin)} (${(fs.statSync(bin).size / 1048576).toFixed(1)} MiB)`);
