// `-o type=tar`: the final filesystem as one tar (stdout when no dest);
// multi-platform, one tar with a top directory per platform (linux_amd64/ …),
// as BuildKit's tar exporter writes it.
import { Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { compareDirs, encodeHeader, END_OF_ARCHIVE, writeLayer } from '../archive/index';
import { platformDirName } from '../images/platform';
import { withMounted } from '../snapshot/index';
import { platformDirs, type BuildResults, type ExportEnv } from './result';

// Streams the build's final tree (an empty archive for an empty result) into `out`.
export async function writeRootfsTar(results: BuildResults, env: ExportEnv, out: Writable, opts: { platformSplit?: boolean } = {}): Promise<void> {
  if (!platformDirs(results, opts.platformSplit)) {
    const { snapshot } = results.platforms[0].result;
    if (!snapshot) {
      await pipeline(Readable.from([END_OF_ARCHIVE]), out);
      return;
    }
    await withMounted(env.sn, snapshot, async (rootfs) => {
      await pipeline(writeLayer(compareDirs(null, rootfs), rootfs, { sourceDateEpoch: env.sourceDateEpoch }) as Readable, out);
    });
    return;
  }
  // Each platform's entries under its directory, one tree after another, one end-of-archive.
  try {
    // BuildKit dates the platform directories SOURCE_DATE_EPOCH, else 0 (its Stat has no time).
    const mtime = env.sourceDateEpoch ?? 0;
    for (const r of results.platforms) {
      const dir = `${platformDirName(r.platform)}/`;
      await pipeline(Readable.from([encodeHeader({ name: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime })]), out, { end: false });
      const { snapshot } = r.result;
      if (!snapshot) continue;
      await withMounted(env.sn, snapshot, async (rootfs) => {
        const tar = writeLayer(compareDirs(null, rootfs), rootfs, { sourceDateEpoch: env.sourceDateEpoch, prefix: dir, trailer: false });
        await pipeline(tar as Readable, out, { end: false });
      });
    }
    out.end(END_OF_ARCHIVE);
    await finished(out);
  } catch (err) {
    out.destroy(err as Error);
    throw err;
  }
}
