#!/usr/bin/env node
'use strict';
// img's program: the bundled CLI (dist/img.js, scripts/bundle.js), else the
// compiled modules. bin/img runs it through img-launch; run directly, it execs
// the launcher itself when the command needs the user namespace (lib/cli/launch.ts).
// (Developers can run `npx tsx lib/cli/main.ts`.)
//
// The bundle is compiled with V8's code cache: Node 20 has no
// module.enableCompileCache (Node 22), so this does the same with vm.Script.
// The first run of a bundle writes the code V8 compiled for it (after the
// command ran, so the functions it used are in) to $XDG_CACHE_HOME/img or
// ~/.cache/img; later runs skip most parsing and compiling. Builds and the
// other commands use different functions, so they keep one cache each.
const fs = require('node:fs');
const Module = require('node:module');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');

const bundle = path.join(__dirname, '..', 'dist', 'img.js');

function cacheDir() {
  const root = process.env.XDG_CACHE_HOME || (process.env.HOME ? path.join(process.env.HOME, '.cache') : '');
  return root ? path.join(root, 'img') : path.join(os.tmpdir(), `img-${process.getuid()}`);
}

function runBundle() {
  const st = fs.statSync(bundle);
  const kind = process.argv.includes('build') ? 'build' : 'cli';
  const key = `${st.size}-${Math.round(st.mtimeMs)}-${process.version}-${process.arch}`;
  const dir = cacheDir();
  const file = path.join(dir, `bundle-${kind}-${key}.ccache`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(file);
  } catch {
    // first run of this bundle, or no cache dir: compile from source
  }
  const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        for (const old of fs.readdirSync(dir)) if (old.startsWith(`bundle-${kind}-`) && old.endsWith('.ccache')) fs.rmSync(path.join(dir, old), { force: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, file);
      } catch {
        // a read-only home: every run compiles, as without the cache
      }
    });
  }
  const mod = new Module(bundle, module);
  mod.filename = bundle;
  mod.paths = Module._nodeModulePaths(path.dirname(bundle));
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle));
}

if (fs.existsSync(bundle)) runBundle();
else require('../dist/lib/cli/start.js');
