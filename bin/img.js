#!/usr/bin/env node
'use strict';
// img's program: the bundled CLI (dist/img.js, scripts/bundle.js), else the
// compiled modules. bin/img runs it through img-launch; run directly, it execs
// the launcher itself when the command needs the user namespace (lib/cli/launch.ts).
// (Developers can run `npx tsx lib/cli/main.ts`.)
//
// The bundle is compiled with V8's code cache (lib/cli/code-cache.ts).
const fs = require('node:fs');
const path = require('node:path');

const bundle = path.join(__dirname, '..', 'dist', 'img.js');

if (fs.existsSync(bundle)) require('../dist/lib/cli/code-cache.js').runWithCodeCache(fs.readFileSync(bundle, 'utf8'), bundle, 'bundle');
else require('../dist/lib/cli/start.js');
