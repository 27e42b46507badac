// Runs inside the user namespace (as the rootless test user): exercises one
// snapshot backend end to end and prints a JSON report for backends.test.ts.
// argv: <stateDir> <backend>
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { createLayerBlob } from '../../../lib/archive/layer';
import { writeLayer } from '../../../lib/archive/diff';
import { ContentStore } from '../../../lib/content/store';
import { runContainer } from '../../../lib/exec/run';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { openSnapshotter, unpackImage, type UnpackProgress } from '../../../lib/snapshot/index';
import type { Manifest } from '../../../lib/images/types';
import { makeBusyboxImage } from '../../fixtures/images';
import { FILES } from './files';
import { countSleepers, runShell } from './common';


function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir));
}

// The superblock options of the mount at `target` (mountinfo's last field).
function superOptions(target: string): string[] {
  const line = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === target);
  return line ? line.split(' - ')[1].split(' ')[2].split(',') : [];
}

const run = runShell;

async function tarEntries(file: string): Promise<{ name: string; type: string; uid: number }[]> {
  const { createGunzip } = await import('node:zlib');
  const ex = tarStream.extract();
  const entries: { name: string; type: string; uid: number }[] = [];
  ex.on('entry', (h, stream, next) => {
    entries.push({ name: h.name, type: h.type ?? 'file', uid: h.uid ?? 0 });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  fs.createReadStream(file).pipe(createGunzip()).pipe(ex);
  await done;
  return entries;
}

const report: Record<string, unknown> = {};

async function main() {
  await enterUserNamespace();
  const [state, backend] = process.argv.slice(2);
  const img = await makeBusyboxImage({ extraFiles: FILES });
  await img.writeToStore(state, 'busybox');
  const content = new ContentStore(state);
  const manifest = await content.readJson<Manifest>(img.manifest.digest);
  const sn = await openSnapshotter(state, backend as 'native');
  report.backend = sn.backend;

  // Unpack, then again (reused).
  const events: UnpackProgress[] = [];
  const top = await unpackImage(state, sn, manifest, img.config, (e) => events.push(e), { ref: 'docker.io/library/busybox:latest' });
  const again = await unpackImage(state, sn, manifest, img.config, (e) => events.push(e));
  report.top = top;
  report.again = again;
  report.events = events.map((e) => e.status);
  report.info = await sn.get(img.diffIds[0]);

  const ro = await sn.mount(top);
  const bin = fs.readdirSync(path.join(ro.rootfs, 'bin'));
  report.binCount = bin.length;
  report.shLink = fs.readlinkSync(path.join(ro.rootfs, 'bin', 'sh'));
  const bb = fs.statSync(path.join(ro.rootfs, 'bin', 'busybox'));
  report.busyboxMode = bb.mode & 0o7777;
  report.busyboxUid = bb.uid;
  try {
    fs.writeFileSync(path.join(ro.rootfs, 'nope'), 'x');
    report.committedWritable = true;
  } catch (err) {
    report.committedWritable = (err as NodeJS.ErrnoException).code;
  }
  await ro.release();

  // A RUN step in an active snapshot.
  const active = await sn.prepare(top, 'mount / from exec /bin/sh -c test');
  const m = await sn.mount(active);
  report.run = await run(
    m.rootfs,
    state,
    [
      'echo hi > /x',
      'echo bob:x:1000:1000::/home/bob:/bin/sh >> /etc/passwd',
      'mkdir -p /home/bob && touch /home/bob/f && chown -R 1000:1000 /home/bob',
      'rm /data/gone/b',
      'rm -rf /opq && mkdir /opq && echo new > /opq/new',
      'mkdir -p /tmp && chmod 1777 /tmp',
      'su bob -c "id -u > /tmp/whoami"',
      '(sleep 1000 &)',
      'sleep 1000 &',
      'echo done',
    ].join('\n'),
  );
  report.leftoverSleeps = countSleepers();
  try {
    report.whoami = fs.readFileSync(path.join(m.rootfs, 'tmp', 'whoami'), 'utf8').trim();
  } catch (err) {
    report.whoami = (err as Error).message;
  }
  report.exit7 = (await run(m.rootfs, state, 'echo failing >&2; exit 7')).exitCode;
  // RUN --mount style mounts: a read-only bind of a host dir, a writable bind, a tmpfs.
  const hostDir = path.join(state, 'bind-src');
  fs.mkdirSync(hostDir, { recursive: true });
  fs.writeFileSync(path.join(hostDir, 'in'), 'from host');
  const rwDir = path.join(state, 'bind-rw');
  fs.mkdirSync(rwDir, { recursive: true });
  let mountsOut = '';
  const mres = await runContainer({
    rootfs: m.rootfs,
    args: ['/bin/sh', '-c', 'cat /src/in; echo; touch /src/x 2>/dev/null && echo src-writable || echo src-ro; echo out > /rw/made; echo t > /scratch/t && echo tmpfs-ok; grep -c " /scratch tmpfs " /proc/mounts'],
    env: [],
    cwd: '/',
    user: 'root',
    network: 'default',
    mounts: [
      { type: 'bind', source: hostDir, target: '/src', readonly: true },
      { type: 'bind', source: rwDir, target: '/rw', readonly: false },
      { type: 'tmpfs', target: '/scratch', size: 1 << 20 },
    ],
    stateDir: state,
    onOutput: (_s, c) => (mountsOut += c.toString()),
  });
  report.mounts = { exit: mres.exitCode, out: mountsOut, made: fs.readFileSync(path.join(rwDir, 'made'), 'utf8') };
  report.netNone = (await run(m.rootfs, state, 'cat /proc/net/dev', 'none')).out;
  report.netDefault = (await run(m.rootfs, state, 'cat /proc/net/dev')).out;
  // A command that cannot start: an error (or a non-zero status), and nothing left mounted by it.
  try {
    report.badCmd = (await runContainer({ rootfs: m.rootfs, args: ['/no/such/binary'], env: [], cwd: '/', user: 'root', network: 'default', mounts: [], stateDir: state })).exitCode;
  } catch (err) {
    report.badCmd = `error: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    await runContainer({ rootfs: m.rootfs, args: ['true'], env: [], cwd: '/', user: 'nobodyhere', network: 'default', mounts: [], stateDir: state });
  } catch (err) {
    report.badUser = (err as Error).message;
  }
  await m.release();
  await m.release(); // idempotent

  // The same active snapshot mounted again (overlayfs mounts a writable one volatile and
  // the kernel leaves a marker that refuses the next mount of that work dir; this process
  // left it, so it goes), then one whose marker a dead process left: refused.
  const remounted = await sn.mount(active);
  report.remount = { x: fs.readFileSync(path.join(remounted.rootfs, 'x'), 'utf8').trim(), options: superOptions(remounted.rootfs) };
  await remounted.release();
  const orphan = await sn.prepare(top, 'left mounted by a process that died');
  fs.mkdirSync(path.join(state, 'snapshots', sn.backend, orphan, 'work', 'work', 'incompat', 'volatile'), { recursive: true });
  try {
    (await sn.mount(orphan)).release();
    report.orphanMount = 'mounted';
  } catch (err) {
    report.orphanMount = (err as Error).message;
  }
  await sn.remove(orphan);

  const committed = await sn.commit(active, 'mount / from exec /bin/sh -c test');
  report.committedInfo = await sn.get(committed);
  report.changes = [];
  for await (const c of sn.changes(committed)) (report.changes as unknown[]).push(c);
  const dr = await sn.diffRoot(committed);
  const layerFile = path.join(state, 'layer.tar.gz');
  const blob = await createLayerBlob(writeLayer(sn.changes(committed), dr.rootfs, { format: sn.diskFormat }), 'gzip', fs.createWriteStream(layerFile) as Writable);
  await dr.release();
  report.blob = blob;
  report.entries = await tarEntries(layerFile);
  report.usage = await sn.usage(committed);
  report.bobFile = path.join(sn.backend === 'native' ? path.join(state, 'snapshots', 'native', committed, 'fs') : path.join(state, 'snapshots', sn.backend, committed, 'fs'), 'home', 'bob', 'f');

  // The committed result as a parent: the changes are visible, the whiteout hides b.
  const child = await sn.view(committed, 'view');
  const v = await sn.mount(child);
  report.viewSees = {
    x: fs.readFileSync(path.join(v.rootfs, 'x'), 'utf8').trim(),
    b: fs.existsSync(path.join(v.rootfs, 'data', 'gone', 'b')),
    a: fs.existsSync(path.join(v.rootfs, 'data', 'keep', 'a')),
    opq: fs.readdirSync(path.join(v.rootfs, 'opq')),
  };
  // Mount errors release what they made: mounting a removed snapshot fails cleanly.
  await v.release();
  await sn.remove(child);
  try {
    await sn.mount(child);
  } catch (err) {
    report.mountRemoved = (err as Error).message;
  }
  report.list = (await sn.list()).map((s) => ({ id: s.id, kind: s.kind, parent: s.parent }));
  report.mountsLeft = mountsUnder(state);
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.stderr.write(`partial report: ${JSON.stringify(report)}\n`);
  process.exit(1);
});
