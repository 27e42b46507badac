// One archive operation in its own process, so bench/archive.ts can time ours exactly like
// the CLI tools it compares with (wall and CPU via /usr/bin/time, children included).
//   create <srcDir> <outFile> <gzip|zstd|none> [level]     createLayerBlob
//   apply  <layerFile> <dstDir>
// The codec is the environment's choice (IMG_GZIP_CODEC, IMG_ZSTD_CODEC; lib/archive/codecs.ts).
import * as fs from 'node:fs';
import { applyLayer } from '../lib/archive/apply';
import { compareDirs, writeLayer } from '../lib/archive/diff';
import { createLayerBlob } from '../lib/archive/layer';
import type { Compression } from '../lib/archive/compression';

async function main(): Promise<void> {
  const [op, a, b, c, level] = process.argv.slice(2);
  if (op === 'create') {
    const r = await createLayerBlob(writeLayer(compareDirs(null, a), a), c as Compression, fs.createWriteStream(b), {
      level: level ? Number(level) : undefined,
    });
    process.stdout.write(JSON.stringify(r) + '\n');
  } else if (op === 'apply') {
    const r = await applyLayer(fs.createReadStream(a, { highWaterMark: 1024 * 1024 }), { root: b, sameOwner: true });
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    throw new Error(`unknown op ${op}`);
  }
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
