// `-o type=tar`: the final filesystem as one tar (stdout when no dest).
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Snapshotter } from '../snapshot/types';

// Streams the tree of `snapshot` (null = empty) as a tar into `out`.
export async function writeRootfsTar(sn: Snapshotter, snapshot: string | null, out: Writable, opts: { sourceDateEpoch?: number } = {}): Promise<void> {
  const { compareDirs, writeLayer } = await import('../archive/index');
  if (!snapshot) {
    await pipeline(Readable.from([Buffer.alloc(1024)]), out);
    return;
  }
  const m = await sn.mount(snapshot);
  try {
    const tar = writeLayer(compareDirs(null, m.rootfs), m.rootfs, { sourceDateEpoch: opts.sourceDateEpoch });
    await pipeline(tar as Readable, out);
  } finally {
    await m.release();
  }
}
