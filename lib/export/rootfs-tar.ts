// `-o type=tar`: the final filesystem as one tar (stdout when no dest).
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compareDirs, writeLayer } from '../archive/index';
import { withMounted } from '../snapshot/index';
import type { BuildResult, ExportEnv } from './result';

// Streams the build's final tree (an empty archive for an empty result) into `out`.
export async function writeRootfsTar(result: BuildResult, env: ExportEnv, out: Writable): Promise<void> {
  if (!result.snapshot) {
    await pipeline(Readable.from([Buffer.alloc(1024)]), out);
    return;
  }
  await withMounted(env.sn, result.snapshot, async (rootfs) => {
    const tar = writeLayer(compareDirs(null, rootfs), rootfs, { sourceDateEpoch: env.sourceDateEpoch });
    await pipeline(tar as Readable, out);
  });
}
