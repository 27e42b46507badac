// A build starts outside the user namespace when it can. Only snapshots need the
// namespace (their files belong to subordinate ids), and a build whose every step
// is a cache hit exporting to the image store touches none: it then finishes
// without paying for the re-exec (one more Node start and module load). The first
// time a step wants a snapshot, NeedsUserNamespace unwinds the build, the CLI
// drops the output it buffered and re-runs the whole command in the namespace.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { newSnapshotter } from '../snapshot/open';
import type { Snapshotter, SnapshotBackend } from '../snapshot/types';
import { findError, NeedsUserNamespace } from '../util/errors';

export { NeedsUserNamespace };

// True when `err`, or anything it wraps (the solver keeps step errors as `cause`), is a NeedsUserNamespace.
export function needsUserNamespace(err: unknown): boolean {
  return findError(err, NeedsUserNamespace) !== undefined;
}

// The snapshotter a probing build uses: metadata reads (get, list) work, anything
// that mounts or writes snapshots throws NeedsUserNamespace. `auto` is resolved
// from the verdict an earlier namespaced run cached; without one we cannot know
// the backend, so the probe gives up at once.
export async function probeSnapshotter(stateDir: string, backend: 'auto' | SnapshotBackend): Promise<Snapshotter> {
  let chosen: SnapshotBackend;
  if (backend === 'auto') {
    try {
      const cached = JSON.parse(await fsp.readFile(path.join(stateDir, 'snapshots', 'auto.json'), 'utf8')) as {
        kernel?: string;
        userns?: boolean;
        backend?: SnapshotBackend;
      };
      if (cached.kernel !== os.release() || cached.userns !== true || !cached.backend) throw new NeedsUserNamespace('this build step needs the user namespace (snapshotter not chosen yet)');
      chosen = cached.backend;
    } catch (err) {
      if (err instanceof NeedsUserNamespace) throw err;
      throw new NeedsUserNamespace('this build step needs the user namespace (snapshotter not chosen yet)');
    }
  } else chosen = backend;
  const real = newSnapshotter(stateDir, chosen);
  const allowed = new Set<PropertyKey>(['backend', 'get', 'list', 'listMeta', 'close']);
  return new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || allowed.has(prop)) return typeof value === 'function' ? value.bind(target) : value;
      return () => {
        throw new NeedsUserNamespace(`this build step needs the user namespace (snapshot ${String(prop)})`);
      };
    },
  });
}

// Holds what a probing build writes, so a probe that gives up leaves no trace.
export class HeldOutput extends Writable {
  private readonly chunks: Buffer[] = [];
  readonly isTTY?: boolean;
  readonly columns?: number;
  readonly rows?: number;
  constructor(private readonly target: NodeJS.WriteStream) {
    super();
    this.isTTY = target.isTTY;
    this.columns = target.columns;
    this.rows = target.rows;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  release(): void {
    for (const c of this.chunks) this.target.write(c);
    this.chunks.length = 0;
  }
  discard(): void {
    this.chunks.length = 0;
  }
}
