#!/usr/bin/env node
'use strict';
// Bundles the CLI into one CommonJS file, dist/img.js (what bin/img.js loads),
// with esbuild: one file to read and compile at start instead of ~150 modules.
// The single binary (scripts/build-sea.js) bundles the same entry.
//   node scripts/bundle.js [outfile]
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function bundle(outfile, define = {}, entry = path.join(root, 'lib', 'cli', 'start.ts')) {
  require('esbuild').buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    define: { IMG_BUNDLED_VERSION: JSON.stringify(require('../package.json').version), ...define },
    logLevel: 'warning',
  });
}

module.exports = { bundle };

if (require.main === module) bundle(path.resolve(process.argv[2] || path.join(root, 'dist', 'img.js')));
