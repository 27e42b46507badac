// Helpers the scenario scripts (which run inside the user namespace) share.
import * as fs from 'node:fs';
import { runContainer } from '../../../lib/exec/run';

// `/bin/sh -c script` as root in `rootfs`; output of both streams together.
export async function runShell(
  rootfs: string,
  state: string,
  script: string,
  network: 'default' | 'none' = 'default',
): Promise<{ exitCode: number; out: string }> {
  let out = '';
  const res = await runContainer({
    rootfs,
    args: ['/bin/sh', '-c', script],
    env: [],
    cwd: '/',
    user: 'root',
    network,
    mounts: [],
    stateDir: state,
    onOutput: (_s, c) => (out += c.toString()),
  });
  return { exitCode: res.exitCode, out };
}

// Processes running `sleep 1000` (what the scenarios leave behind on purpose).
export function countSleepers(): number {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('sleep\u00001000');
      } catch {
        return false;
      }
    }).length;
}
