// Runs img's CLI bundle (CommonJS source) through vm.Script with V8's code cache: Node 20 has no
// module.enableCompileCache (Node 22), so this does the same. The first run of a bundle writes the
// code V8 compiled for it (after the command ran, so the functions it used are in) to
// $XDG_CACHE_HOME/img or ~/.cache/img; later runs skip most parsing and compiling. Builds and the
// other commands use different functions, so they keep one cache each. Used by bin/img.js (for
// dist/img.js) and by the single binary's entry (./sea-main.ts, for its bundled asset); it
// imports only Node's modules, so loading it costs next to nothing.
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

// util/fsutil's userCacheDir, written out here: importing it would load four more of img's
// files before the bundle on every start.
function cacheDir(): string {
  const root = process.env.XDG_CACHE_HOME || (process.env.HOME ? path.join(process.env.HOME, '.cache') : '');
  return root ? path.join(root, 'img') : path.join(os.tmpdir(), `img-${process.getuid?.() ?? 0}`);
}

// Internals of Node's CommonJS loader the bundle's module object needs (as a require()d file has).
interface ModuleInternals {
  wrap(source: string): string;
  _nodeModulePaths(dir: string): string[];
}

// source: the bundle's text; filename: the file it comes from (the bundle, or the single binary
// that carries it), whose size and mtime, with Node's version, key the cache; prefix: names its
// cache files.
export function runWithCodeCache(source: string, filename: string, prefix: string): void {
  const st = fs.statSync(filename);
  const key = `${st.size}-${Math.round(st.mtimeMs)}-${process.version}-${process.arch}`;
  const kind = process.argv.includes('build') ? 'build' : 'cli';
  const dir = cacheDir();
  const file = path.join(dir, `${prefix}-${kind}-${key}.ccache`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(file);
  } catch {
    // first run of this bundle, or no cache dir: compile from source
  }
  const loader = Module as unknown as ModuleInternals;
  const script = new vm.Script(loader.wrap(source), { filename, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        for (const old of fs.readdirSync(dir)) if (old.startsWith(`${prefix}-${kind}-`) && old.endsWith('.ccache')) fs.rmSync(path.join(dir, old), { force: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, file);
      } catch {
        // a read-only home: every run compiles, as without the cache
      }
    });
  }
  const mod = new Module(filename);
  mod.filename = filename;
  mod.paths = loader._nodeModulePaths(path.dirname(filename));
  (script.runInThisContext() as (...args: unknown[]) => void).call(mod.exports, mod.exports, Module.createRequire(filename), mod, filename, path.dirname(filename));
}
