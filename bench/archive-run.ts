// One archive operation in its own process, so bench/archive.ts can time ours exactly like
// the CLI tools it compares with (wall and CPU via /usr/bin/time, children included).
//   create <srcDir> <outFile> <gzip|zstd|none> [level]     createLayerBlob (parallel gzip over 4 MiB)
//   create-serial <srcDir> <outFile> gzip [level]          the same pass with one zlib gzip stream
//                                                           (what createLayerBlob did before pgzip)
//   apply  <layerFile> <dstDir>
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer } from '../lib/archive/apply';
import { compareDirs, writeLayer } from '../lib/archive/diff';
import { createLayerBlob } from '../lib/archive/layer';
import { compressStream, type Compression } from '../lib/archive/compression';

function hashTap(h: ReturnType<typeof createHash>): Transform {
  return new Transform({ highWaterMark: 1024 * 1024, transform: (c: Buffer, _e, cb) => (h.update(c), cb(null, c)) });
}

async function main(): Promise<void> {
  const [op, a, b, c, level] = process.argv.slice(2);
  if (op === 'create') {
    const r = await createLayerBlob(writeLayer(compareDirs(null, a), a), c as Compression, fs.createWriteStream(b), {
      level: level ? Number(level) : undefined,
    });
    process.stdout.write(JSON.stringify(r) + '\n');
  } else if (op === 'create-serial') {
    const diff = createHash('sha256');
    const blob = createHash('sha256');
    await pipeline(writeLayer(compareDirs(null, a), a), hashTap(diff), compressStream(c as Compression, level ? Number(level) : undefined), hashTap(blob), fs.createWriteStream(b));
    process.stdout.write(JSON.stringify({ diffId: diff.digest('hex'), digest: blob.digest('hex') }) + '\n');
  } else if (op === 'apply') {
    const r = await applyLayer(fs.createReadStream(a, { highWaterMark: 1024 * 1024 }), { root: b, whiteoutFormat: 'native', sameOwner: true });
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    throw new Error(`unknown op ${op}`);
  }
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
