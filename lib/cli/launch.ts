// Where img starts when it was not started through img-launch (the single
// binary, `node bin/img.js`, the sources under tsx): a command that needs the
// user namespace execs img-launch before the rest of img loads, so img's
// modules load once, inside. bin/img starts through the launcher already.
import { envList, launcherPath, loadAddon, selfArgv } from '../host/index';

// The commands that touch snapshots, and `version`, which reports the entry.
// addon/launcher/img-launch.c has the same list and flag rules (needs_namespace);
// test/exec/launcher.test.ts keeps the two equal.
export const NAMESPACE_COMMANDS = ['build', 'du', 'prune', 'unpack', 'version'];

// Skips the global flags (-b/--backend X, -s/--state X, -d/--debug, short
// clusters like -ds X) to the command word. Help, --version or an unknown
// flag first means no: a command that still needs the namespace re-executes
// itself (slower, still correct).
export function needsNamespace(args: string[]): boolean {
  let i = 0;
  let command: string | undefined;
  while (i < args.length && command === undefined) {
    const a = args[i++];
    if (a === '--backend' || a === '--state') i++;
    else if (a.startsWith('--backend=') || a.startsWith('--state=') || a === '--debug') continue;
    else if (a.length > 1 && a[0] === '-' && a[1] !== '-') {
      for (let c = 1; c < a.length; c++) {
        if (a[c] === 'd') continue;
        if (a[c] !== 'b' && a[c] !== 's') return false;
        if (c === a.length - 1) i++; // the value is the next word, else the rest of this one
        break;
      }
    } else if (a[0] === '-') return false;
    else command = a;
  }
  if (command === undefined || !NAMESPACE_COMMANDS.includes(command)) return false;
  return !args.slice(i).some((a) => a === '-h' || a === '--help');
}

// img-launch moves NODE_EXTRA_CA_CERTS aside (Node 20 parses the file as it starts, ~40 ms,
// and most commands never open a TLS connection): it goes back into the environment for the
// programs img runs, and lib/registry/transport.ts reads the file itself when it needs it.
export function takeBackDeferredEnv(env: NodeJS.ProcessEnv = process.env): void {
  const deferred = env.IMG_DEFERRED_EXTRA_CA_CERTS;
  if (deferred === undefined) return;
  env.NODE_EXTRA_CA_CERTS = deferred;
  delete env.IMG_DEFERRED_EXTRA_CA_CERTS;
}

// Execs img-launch for this very command when it needs the namespace and
// nobody entered it yet; returns otherwise (also when the launcher or the
// addon is missing: the command's door then re-executes from Node). Every
// entry of img calls it first.
export function launchIfNeeded(args: string[] = process.argv.slice(2)): void {
  takeBackDeferredEnv();
  if (process.getuid?.() === 0 || process.env.IMG_USERNS === '1' || process.env.IMG_ENTRY) return;
  if (!needsNamespace(args)) return;
  const launcher = launcherPath();
  if (!launcher) return;
  let execve;
  try {
    execve = loadAddon().execve;
  } catch {
    return;
  }
  execve?.(launcher, [launcher, 'enter', ...selfArgv()], envList(process.env));
}
