// Applying a layer of many small files right after a tree of the same size was removed, into
// a directory made in (a) a plain parent, (b) a parent marked as a top directory (chattr +T,
// host/index.ts spreadNewDirectories: what the snapshotters' roots get). On an ext4 without a
// journal every inode allocation skips the free inodes of its block group deleted in the last
// seconds, walking from the group's first inode; (a) puts the new tree in the group the old
// one just left, (b) lets Orlov's spread choose a group. Runs interleaved, medians.
//   node --import tsx bench/inode-placement.ts [--runs 5] [--files 4000] [--dir /var/tmp]
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../lib/archive/apply';
import { tarPacker } from '../test/fixtures/layers';
import { spreadNewDirectories } from '../lib/host/index';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const RUNS = Number(arg('runs', '5'));
const FILES = Number(arg('files', '4000'));
const DIR = arg('dir', '/var/tmp');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// FILES files of 0.5–4 KiB in directories of 100, and a symlink per ten files.
async function layer(): Promise<Buffer> {
  const tar = tarPacker();
  const add = tar.add;
  const bytes = crypto.randomBytes(4096);
  for (let i = 0; i < FILES; i++) {
    if (i % 100 === 0) await add({ name: `d${i / 100}/`, type: 'directory', mode: 0o755 });
    const name = `d${Math.floor(i / 100)}/f${i}`;
    await add({ name, type: 'file', mode: 0o644 }, bytes.subarray(0, 512 + ((i * 977) % 3584)));
    if (i % 10 === 0) await add({ name: `${name}.link`, type: 'symlink', linkname: `f${i}` });
  }
  return tar.finish();
}

async function main(): Promise<void> {
  const tar = await layer();
  const base = fs.mkdtempSync(path.join(DIR, 'img-bench-inodes-'));
  const parents = { plain: path.join(base, 'plain'), spread: path.join(base, 'spread') };
  for (const p of Object.values(parents)) fs.mkdirSync(p);
  spreadNewDirectories(parents.spread);
  const times: Record<string, number[]> = { plain: [], spread: [] };
  const sameOwner = process.getuid?.() === 0;
  try {
    for (let run = -1; run < RUNS; run++) {
      for (const [kind, parent] of Object.entries(parents)) {
        const root = path.join(parent, `r${run + 1}`);
        const t0 = performance.now();
        await applyLayer(Readable.from([tar]), { root, sameOwner });
        const ms = performance.now() - t0;
        fs.rmSync(root, { recursive: true, force: true }); // the next apply follows this deletion
        if (run >= 0) times[kind].push(ms);
      }
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
  console.log(`apply of ${FILES} files + ${FILES / 10} symlinks (${(tar.length / 1048576).toFixed(1)} MiB tar) after removing the previous tree, ${RUNS} runs, under ${DIR}:`);
  for (const [kind, xs] of Object.entries(times)) console.log(`  ${kind.padEnd(7)} median ${median(xs).toFixed(0)} ms  (${xs.map((x) => x.toFixed(0)).join(' ')})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
