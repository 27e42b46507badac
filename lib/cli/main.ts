// `img` entry point: global flags, command registration, error reporting.
// Commands are registered from ./commands/index.ts; each command loads its
// engine modules lazily so `img ls` never pays for the registry client or the addon.
// Installed img starts in ./start.ts (the bundle's entry); the sources run
// this file directly (`node --import tsx lib/cli/main.ts`).
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BACKENDS, defaultStateDir, prepareStateDir, type GlobalOptions } from './context';
import { formatHelp } from './help';
import { commands } from './commands/index';
import { ImgError, StepError } from '../util/errors';
import { escapeControls } from '../util/escape';
import { debug, isDebug, setDebug } from '../util/log';
import { startupMarks } from '../util/startup';
import { VERSION } from '../util/version';
import { launchIfNeeded } from './launch';

export function buildProgram(): { program: Command; globals: () => GlobalOptions } {
  const program = new Command('img');
  program
    .description('Standalone, daemon-less, unprivileged Dockerfile and OCI compatible container image builder')
    .usage('[OPTIONS] COMMAND [ARG...]')
    .addOption(
      new Option('-b, --backend <string>', `backend for snapshots ([${BACKENDS.join(' ')}])`).choices(BACKENDS).default('auto'),
    )
    .option('-d, --debug', 'enable debug logging')
    .option('-s, --state <string>', 'directory to hold the global state', defaultStateDir())
    .version(`img version v${VERSION}`, '-v, --version', 'Print version information and quit')
    .configureHelp({ formatHelp })
    .helpCommand('help [command]', 'Help about any command')
    .showHelpAfterError(false)
    .enablePositionalOptions(false);
  program.hook('preAction', async (_, action) => {
    setDebug(Boolean(program.opts().debug));
    await prepareStateDir(action.name(), stateDir(program.opts().state));
  });
  const globals = (): GlobalOptions => {
    const o = program.opts();
    return { backend: o.backend, debug: Boolean(o.debug), state: stateDir(o.state) };
  };
  for (const register of commands) {
    const sub = register(program, globals);
    sub.configureHelp({ formatHelp });
  }
  return { program, globals };
}

// --state made absolute: the rooms hand its paths to runc (a RUN's resolv.conf and
// hosts binds), which reads relative ones from the bundle's directory.
function stateDir(state: string): string {
  return state ? path.resolve(state) : state;
}

// Messages quote untrusted text (Dockerfile lines, file names, registry
// answers): control characters are printed as escapes, never obeyed.
export function reportError(err: unknown): number {
  const say = (s: string): boolean => process.stderr.write(escapeControls(s));
  if (err instanceof ImgError) {
    const hint = err.hint ? ` — ${err.hint}` : '';
    // A failed build step ends as BuildKit's does ("ERROR: failed to solve: …"),
    // below its output and Dockerfile lines, which the build printed.
    say(`${err instanceof StepError ? 'ERROR' : 'Error'}: ${err.message}${hint}\n`);
    if (isDebug()) {
      say(`code: ${err.code}\n`);
      if (err.detail) say(`${err.detail}\n`);
      if (err.stack) say(`${err.stack}\n`);
      if (err.cause) say(`caused by: ${String((err.cause as Error)?.stack ?? err.cause)}\n`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  say(`Error: ${e?.message ?? String(err)}${isDebug() ? '' : ' (run with --debug for details)'}\n`);
  if (isDebug() && e?.stack) say(`${e.stack}\n`);
  return 1;
}

// Where start-up went: img-launch (when it ran), Node's own bootstrap, loading
// img's modules (up to the command's work), the work. Printed last, so
// --debug's first line stays the command's own.
function debugStartup(): void {
  if (!isDebug() || startupMarks.main === undefined) return;
  const boot = performance.nodeTiming.bootstrapComplete;
  const loaded = startupMarks.work ?? startupMarks.main;
  let launcher = '';
  try {
    const facts = JSON.parse(process.env.IMG_ENTRY ?? 'null') as { launcherMs?: number } | null;
    if (facts?.launcherMs !== undefined) launcher = `img-launch ${facts.launcherMs.toFixed(1)} ms, `;
  } catch {
    /* lib/exec/entry.ts reports a bad record */
  }
  debug(`start-up: ${launcher}Node ${boot.toFixed(1)} ms, modules ${(loaded - boot).toFixed(1)} ms, work ${(performance.now() - loaded).toFixed(1)} ms`);
}

export async function main(argv: string[] = process.argv): Promise<number> {
  startupMarks.main ??= performance.now();
  const { program } = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  } finally {
    debugStartup();
  }
}

// A reader of stdout that stops early (`img inspect … | head`) ends img quietly, as a Go CLI
// ends on SIGPIPE (the shell sees 141), rather than as a crash; a command that writes an
// archive to stdout listens itself and says what is incomplete.
function quietOnBrokenStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (process.stdout.listenerCount('error') > 1) return;
    if (err.code !== 'EPIPE') throw err;
    process.exit(141);
  });
}

// Runs img with process.argv and sets the exit code.
export function run(): void {
  quietOnBrokenStdout();
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.exitCode = reportError(err);
    },
  );
}

// Run as a program from the sources. In a bundle (dist/img.js, the single
// binary) every module shares the bundle's `module`, so `require.main ===
// module` holds there too: the file name tells this file apart, and the
// bundle's entry (./start.ts) calls run() itself.
if (require.main === module && /[\\/]main\.[jt]s$/.test(__filename)) {
  launchIfNeeded();
  run();
}
