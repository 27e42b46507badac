import * as os from 'node:os';
import * as path from 'node:path';
import { makeDirs } from '../util/fsutil';

export type Backend = 'auto' | 'native' | 'overlayfs' | 'fuse-overlayfs';
export const BACKENDS: Backend[] = ['auto', 'native', 'overlayfs', 'fuse-overlayfs'];

// Global flags, resolved once and handed to every command.
export interface GlobalOptions {
  backend: Backend;
  debug: boolean;
  state: string;
}

// img's default: $XDG_DATA_HOME/img, else $HOME/.local/share/img, else /tmp/img.
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, 'img');
  const home = env.HOME || safeHomedir();
  if (home) return path.join(home, '.local', 'share', 'img');
  return '/tmp/img';
}

// The passwd entry's home: os.homedir() would return an empty HOME as it is. (Inside the user
// namespace HOME is always set: img-launch and the door give it the user's home, not /root.)
function safeHomedir(): string {
  try {
    return os.userInfo().homedir;
  } catch {
    return '';
  }
}

// Commands that write to the state dir make it first, once, through makeDirs: a path
// that cannot hold it (under /proc, a file, no permission) is one clear error before
// any work, not a hang or an errno deep inside a room.
const STATE_WRITERS = new Set(['build', 'load', 'pull', 'push', 'rm', 'tag', 'unpack', 'prune']);

export async function prepareStateDir(command: string, state: string): Promise<void> {
  if (STATE_WRITERS.has(command)) await makeDirs(state, 'state directory (--state)');
}
