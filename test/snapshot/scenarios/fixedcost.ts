// Inside the user namespace, overlayfs: what a step's snapshot work leaves on disk.
// A chain committed under keys with ':' in them ("sha256:…"), each mounted over the
// one below; a lease checked from another process (flock(1)); mounts made one after
// another. Prints one JSON line. argv: <stateDir>
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { openSnapshotter } from '../../../lib/snapshot/index';

async function main() {
  await enterUserNamespace();
  const [state] = process.argv.slice(2);
  const sn = await openSnapshotter(state, 'overlayfs');
  const root = path.join(state, 'snapshots', 'overlayfs');
  const locks = path.join(state, 'locks', 'snapshots', 'overlayfs');
  let parent: string | null = null;
  const actives: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = await sn.prepare(parent, `step ${i}`);
    actives.push(id);
    const m = await sn.mount(id);
    fs.writeFileSync(path.join(m.rootfs, `f${i}`), String(i));
    await m.release();
    parent = await sn.commit(id, `step ${i}`, `sha256:${String(i).repeat(64)}`);
  }
  const top = await sn.mount(parent!);
  const seen = fs.readdirSync(top.rootfs).sort();
  await top.release();
  // The lease on the committed snapshot is a shared flock another process cannot break.
  const lockFile = path.join(locks, `${parent}.lock`);
  const excl = spawnSync('flock', ['--nonblock', '--exclusive', lockFile, 'true']);
  const shared = spawnSync('flock', ['--nonblock', '--shared', lockFile, 'true']);
  for (let i = 0; i < 4; i++) {
    const m = await sn.mount(parent!);
    await m.release();
  }
  const meta = JSON.parse(fs.readFileSync(path.join(root, parent!, 'meta.json'), 'utf8'));
  console.log(
    JSON.stringify({
      seen,
      lockBusyForOthers: excl.status !== 0,
      sharedOk: shared.status === 0,
      activeLocksLeft: actives.filter((id) => fs.existsSync(path.join(locks, `${id}.lock`))),
      committedLocks: fs.readdirSync(locks).filter((n) => n.startsWith('sha256:')).length,
      links: fs.readdirSync(path.join(root, 'l')),
      mountPoints: fs.readdirSync(path.join(root, 'mnt')).length,
      snapshotFiles: fs.readdirSync(path.join(root, parent!)).sort(),
      meta: { id: meta.id, kind: meta.kind, key: meta.key },
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
