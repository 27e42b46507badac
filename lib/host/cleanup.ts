// Process-level cleanup registry: every mount (and running container) this
// process makes registers an undo step here, so SIGINT/SIGTERM never leaves a
// mount or a runc container behind. The handlers are installed only while
// something is registered, so Node's default signal behaviour is otherwise kept.
import { debug } from '../util/log';

type Undo = () => void; // synchronous: it runs inside a signal handler

const steps = new Map<number, { what: string; undo: Undo }>();
let nextId = 1;
let installed = false;

function runAll(): void {
  // Newest first: inner mounts before the mounts they sit on.
  const ids = [...steps.keys()].sort((a, b) => b - a);
  for (const id of ids) {
    const s = steps.get(id);
    steps.delete(id);
    if (!s) continue;
    try {
      s.undo();
    } catch (err) {
      process.stderr.write(`WARN cleanup of ${s.what} failed: ${(err as Error).message}\n`);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  debug(`${signal}: releasing ${steps.size} outstanding mount(s)/container(s)`);
  runAll();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', runAll);
}

function uninstall(): void {
  if (!installed || steps.size > 0) return;
  installed = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', runAll);
}

// Registers `undo` (run on signal or at exit); returns a function that
// unregisters it once the caller has undone the thing itself.
export function registerCleanup(what: string, undo: Undo): () => void {
  const id = nextId++;
  steps.set(id, { what, undo });
  install();
  return () => {
    steps.delete(id);
    uninstall();
  };
}

// How many undo steps are outstanding (tests and debug output).
export function outstandingCleanups(): string[] {
  return [...steps.values()].map((s) => s.what);
}
