// Runs one process in a rootfs with runc: writes the OCI bundle (config.json),
// starts `runc run`, streams its output, and always cleans up (runc delete,
// temp files) — on success, failure, and abort.
import { runInBundle, type RuntimeLogEntry } from './runc';
import type { Rlimit } from './spec';

export interface BindMount {
  type: 'bind';
  source: string;
  target: string;
  readonly: boolean;
}
export interface TmpfsMount {
  type: 'tmpfs';
  target: string;
  size?: number; // bytes
}

export interface RunOptions {
  rootfs: string; // a mounted snapshot (Mounted.rootfs)
  args: string[];
  env: string[];
  cwd: string;
  user: string; // "name", "uid", "uid:gid", "name:group" — resolved in rootfs
  hostname?: string; // default: a short random id
  network: 'default' | 'none' | 'host';
  mounts: (BindMount | TmpfsMount)[];
  extraHosts?: { host: string; ip: string }[];
  stateDir: string;
  signal?: AbortSignal;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  // Mount a fresh /proc in a pid namespace; default: whether this host allows it (canMountProc, which warns once when not).
  freshProc?: boolean;
  // Keep runc's own log (returned as runtimeLog; default true). Without it runc logs to
  // /dev/null: one file less to make and remove per step; its fatal errors still reach stderr.
  runtimeLog?: boolean;
  // --shm-size (bytes; default 64 MiB) and --ulimit of `img build`.
  shmSize?: number;
  rlimits?: Rlimit[];
  // RUN --security=insecure: see SpecInput.insecure.
  insecure?: boolean;
}

// Resolves to the process's exit status (128+n when killed by signal n) and
// what runc itself logged (kept out of the process's output; --debug prints
// it); the caller formats a failure. Throws ImgError when the container cannot start.
export async function runContainer(opts: RunOptions): Promise<{ exitCode: number; runtimeLog: RuntimeLogEntry[] }> {
  return runInBundle(opts);
}
