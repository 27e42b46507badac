// The mount points runc creates for a RUN step: found before the step (as the
// container resolves them: symlinks within the rootfs), removed after it when
// still empty, their parents' times put back. Plain directories, no namespace.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { missingMountPoints, removeMountPoints } from '../../lib/exec/mounts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function rootfs(): string {
  const r = fs.mkdtempSync(path.join(os.tmpdir(), 'img-mountpoints-'));
  dirs.push(r);
  fs.mkdirSync(path.join(r, 'dev'));
  fs.mkdirSync(path.join(r, 'etc'));
  fs.mkdirSync(path.join(r, 'run'));
  fs.writeFileSync(path.join(r, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  // resolv.conf as systemd images have it: a relative link to a file that is not there.
  fs.symlinkSync('../run/systemd/resolve/stub-resolv.conf', path.join(r, 'etc', 'resolv.conf'));
  // An absolute link out of the rootfs must stay inside it.
  fs.symlinkSync('/opt/data', path.join(r, 'data'));
  fs.writeFileSync(path.join(r, 'afile'), 'x');
  const old = new Date('2001-02-03T04:05:06Z');
  for (const d of ['', 'dev', 'etc', 'run']) fs.utimesSync(path.join(r, d), old, old);
  return r;
}

test('missing mount points: each missing component once, in order, through symlinks inside the rootfs', async () => {
  const r = rootfs();
  const dests = ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/resolv.conf', '/etc/hosts', '/data/cache/x', '/afile/below', '/etc/passwd'];
  const points = await missingMountPoints(r, dests);
  assert.deepEqual(
    points.paths.map((p) => path.relative(r, p)),
    ['proc', 'dev/pts', 'dev/shm', 'dev/mqueue', 'sys', 'run/systemd/resolve/stub-resolv.conf', 'etc/hosts', 'opt/data', 'opt/data/cache', 'opt/data/cache/x'],
  );
  // Parents that exist, whose times the removal restores (a file's "child" is never made: no walk below it).
  assert.deepEqual([...points.parents.keys()].map((p) => path.relative(r, p)).sort(), ['', 'dev', 'etc']);
  for (const t of points.parents.values()) assert.equal(t.mtime.toISOString(), '2001-02-03T04:05:06.000Z');
});

test('removal: empty mount points go, what the step filled stays, parents keep their times', async () => {
  const r = rootfs();
  const points = await missingMountPoints(r, ['/proc', '/dev/pts', '/etc/hosts', '/cache/a', '/work/out']);
  // What runc and the step would do: create them all, write into one.
  for (const p of ['proc', 'dev/pts', 'cache/a', 'work/out']) fs.mkdirSync(path.join(r, p), { recursive: true });
  fs.writeFileSync(path.join(r, 'etc', 'hosts'), '');
  fs.writeFileSync(path.join(r, 'work', 'out', 'result'), 'made by the step\n');
  await removeMountPoints(points);
  const left = (p: string) => fs.existsSync(path.join(r, p));
  for (const p of ['proc', 'dev/pts', 'etc/hosts', 'cache']) assert.ok(!left(p), `${p} should be gone`);
  assert.equal(fs.readFileSync(path.join(r, 'work', 'out', 'result'), 'utf8'), 'made by the step\n');
  for (const d of ['', 'dev', 'etc']) assert.equal(fs.statSync(path.join(r, d)).mtime.toISOString(), '2001-02-03T04:05:06.000Z', `mtime of /${d}`);
});
