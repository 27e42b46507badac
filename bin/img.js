#!/usr/bin/env node
'use strict';
// Installed entry: run the compiled CLI. (Developers can run `npx tsx lib/cli/main.ts`.)
const { main, reportError } = require('../dist/lib/cli/main.js');
main().then(
  (code) => { process.exitCode = code; },
  (err) => { process.exitCode = reportError(err); },
);
