// The single binary's entry (scripts/build-sea.js makes it the SEA's main). It decides first: a
// command that needs the user namespace execs img-launch here (./launch.ts), before the CLI's 1 MB
// bundle is compiled, so that first start costs Node's bootstrap and little more. Otherwise it runs
// the CLI bundle, an SEA asset, as bin/img.js runs dist/img.js: through V8's code cache in the
// user's cache directory (./code-cache.ts), which holds the functions a command ran (the SEA's
// own code cache, made when it is built, holds only the top level).
import { runWithCodeCache } from './code-cache';
import { launchIfNeeded } from './launch';

launchIfNeeded();

const sea = require('node:sea') as { getAsset(key: string, encoding: string): string };
runWithCodeCache(sea.getAsset('img.cjs', 'utf8'), process.execPath, 'sea');
