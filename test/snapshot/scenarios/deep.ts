// Inside the user namespace: a chain of N committed snapshots (one file each,
// a delete in the middle), then a mount of the top: overlayfs must cope with
// a lowerdir= list longer than a page. argv: <stateDir> <backend> <N>
import * as fs from 'node:fs';
import * as path from 'node:path';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { openSnapshotter } from '../../../lib/snapshot/index';

async function main() {
  await enterUserNamespace();
  const [state, backend, n] = process.argv.slice(2);
  const sn = await openSnapshotter(state, backend as 'native');
  let parent: string | null = null;
  const N = Number(n);
  for (let i = 0; i < N; i++) {
    const id = await sn.prepare(parent, `layer ${i}`);
    // Most layers are written straight into their own dir (fast); the middle
    // one deletes through the merged mount, so the backend makes the whiteout.
    const m = i === Math.floor(N / 2) ? await sn.mount(id) : await sn.diffRoot(id);
    fs.writeFileSync(path.join(m.rootfs, `f${i}`), String(i));
    if (i === Math.floor(N / 2)) fs.rmSync(path.join(m.rootfs, 'f0'));
    await m.release();
    parent = await sn.commit(id, `layer ${i}`, `key-${i}`);
  }
  const top = await sn.mount(parent!);
  const names = fs.readdirSync(top.rootfs);
  const last = fs.readFileSync(path.join(top.rootfs, `f${N - 1}`), 'utf8');
  await top.release();
  const active = await sn.prepare(parent, 'rw on top');
  const rw = await sn.mount(active);
  fs.writeFileSync(path.join(rw.rootfs, 'new'), 'x');
  const rwNames = fs.readdirSync(rw.rootfs).length;
  await rw.release();
  process.stdout.write(JSON.stringify({ count: names.length, hasF0: names.includes('f0'), last, rwNames }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
