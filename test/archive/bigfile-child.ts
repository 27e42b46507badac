// Child process for bigfile.test.ts: applies a generated 2 GiB mostly-zero layer, then
// writes it back as a zstd layer, sampling RSS all along. Prints one JSON line.
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { applyLayer } from '../../lib/archive/apply';
import { compareDirs, writeLayer } from '../../lib/archive/diff';
import { createLayerBlob } from '../../lib/archive/layer';
import { bigFileTar } from '../fixtures/layers';

function hwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

async function main(): Promise<void> {
  const [root, sizeArg] = process.argv.slice(2);
  const size = Number(sizeArg);
  // The kernel's high-water mark (VmHWM) catches peaks a sampling timer could miss.
  const baseline = hwm();
  const t0 = Date.now();
  const applied = await applyLayer(bigFileTar('big.bin', size), { root, sameOwner: true });
  const afterApply = hwm();
  const t1 = Date.now();
  let blobBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      blobBytes += chunk.length;
      cb();
    },
  });
  const blob = await createLayerBlob(writeLayer(compareDirs(null, root), root), 'zstd', sink);
  const peak = hwm();
  const ms = { apply: t1 - t0, write: Date.now() - t1 };
  process.stdout.write(JSON.stringify({ baseline, afterApply, peak, ms, applied, blob, blobBytes }) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
