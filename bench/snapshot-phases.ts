// Where `img unpack` spends its time, per backend, inside the user namespace:
// unpackImage (layers → snapshots) and copyOut (merged rootfs → a directory).
// Run as the unprivileged user on a state dir holding image NAME:
//   node --import tsx bench/snapshot-phases.ts STATE NAME [backends]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { enterUserNamespace } from '../lib/exec/userns';
import { openSnapshotter } from '../lib/snapshot/index';
import { copyOut, resolveStoredImage, unpackResolved } from '../lib/snapshot/rootfs';

async function main() {
  await enterUserNamespace();
  const [state, name, list] = process.argv.slice(2);
  const img = (await resolveStoredImage(state, name))!;
  const out: Record<string, Record<string, number>> = {};
  for (const backend of (list ?? 'overlayfs,fuse-overlayfs,native').split(',')) {
    fs.rmSync(path.join(state, 'snapshots', backend), { recursive: true, force: true });
    const sn = await openSnapshotter(state, backend as 'native');
    const t0 = performance.now();
    const top = await unpackResolved(state, sn, img);
    const t1 = performance.now();
    const m = await sn.mount(top);
    const dst = path.join(state, `phase-out-${backend}`);
    fs.rmSync(dst, { recursive: true, force: true });
    const t2 = performance.now();
    await copyOut(m.rootfs, dst);
    const t3 = performance.now();
    await m.release();
    fs.rmSync(dst, { recursive: true, force: true });
    out[backend] = { unpackMs: Math.round(t1 - t0), mountMs: Math.round(t2 - t1), copyOutMs: Math.round(t3 - t2) };
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
