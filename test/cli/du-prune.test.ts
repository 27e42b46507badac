// `img du` and `img prune` as the unprivileged user: the table shapes img
// prints, reclaimable accounting, filters, in-use marks, and that prune keeps
// what named images need (and what another process is using).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ContentStore } from '../../lib/content/store';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { TSX, cleanup, rootlessUser, runAsUser, runImgRootless, skipUnlessRootless, spawnAsUser, tempDir, waitForOutput } from '../helpers/rootless';

const TOOLS = 'test/snapshot/scenarios/tools.ts';
const BACKEND = 'native'; // fastest; backends share the du/prune code (backends.test.ts covers each)

function chownTree(dir: string): void {
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
}

interface Row {
  id: string;
  reclaimable: string;
  size: string;
  description: string;
}

function parseTable(out: string): { rows: Row[]; summary: Record<string, string>; header: string } {
  const lines = out.trimEnd().split('\n');
  const header = lines[0];
  const rows: Row[] = [];
  const summary: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const m = /^(Reclaimable|Reclaimed|Total):\t+(\S+)$/.exec(l);
    if (m) {
      summary[m[1]] = m[2];
      continue;
    }
    const [id, reclaimable, size, ...desc] = l.split(/\t+/);
    rows.push({ id, reclaimable, size, description: desc.join('\t') });
  }
  return { rows, summary, header };
}

describe('img du / img prune (rootless)', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  let state: string;
  let img: BuiltImage;
  let buildSnap: string;
  let junkBlob: string;

  before(async () => {
    state = tempDir('img-du-');
    dirs.push(state);
    img = await makeBusyboxImage({ extraFiles: { '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' } });
    await img.writeToStore(state, 'busybox');
    junkBlob = (await new ContentStore(state).writeBytes('not referenced by anything')).digest;
    chownTree(state);
    const out = await runImgRootless(['-s', state, '-b', BACKEND, 'unpack', '-o', path.join(state, 'rootfs-out'), 'busybox'], { timeoutMs: 120_000 });
    assert.equal(out.code, 0, out.stderr);
    const res = await runAsUser([process.execPath, '--import', TSX, TOOLS, 'commit-exec', state, BACKEND, 'busybox', 'mount / from exec /bin/sh -c make build'], {
      timeoutMs: 120_000,
    });
    assert.equal(res.code, 0, res.stderr);
    buildSnap = res.stdout.trim();
  });
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });

  test('du: header, one row per snapshot and blob, summary lines', async () => {
    const res = await runImgRootless(['-s', state, 'du'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const t = parseTable(res.stdout);
    assert.match(t.header, /^ID\t+RECLAIMABLE\t+SIZE\t+DESCRIPTION$/);
    const byId = new Map(t.rows.map((r) => [r.id, r]));
    const chain = byId.get(img.diffIds[0])!;
    assert.equal(chain.reclaimable, 'false');
    assert.match(chain.description, /^pulled from docker\.io\/library\/busybox:latest@sha256:[0-9a-f]{64}$/);
    assert.match(chain.size, /^\d+(\.\d+)?(B|KiB|MiB)$/);
    const build = byId.get(buildSnap)!;
    assert.equal(build.reclaimable, 'true');
    assert.equal(build.description, 'mount / from exec /bin/sh -c make build');
    assert.equal(byId.get(junkBlob)!.reclaimable, 'true');
    assert.equal(byId.get(img.layers[0].digest)!.reclaimable, 'false');
    assert.deepEqual(Object.keys(t.summary), ['Reclaimable', 'Total']);
    assert.match(t.summary.Total, /MiB$/);
    // Column alignment: tabwriter pads every row's ID cell to the same tab stop.
    const idCols = res.stdout
      .split('\n')
      .slice(0, t.rows.length + 1)
      .map((l) => l.indexOf('\t'));
    assert.ok(idCols.every((c) => c > 0));
  });

  test('du filters: reclaimable, id prefix, description glob; unknown keys are errors', async () => {
    const rec = parseTable((await runImgRootless(['-s', state, 'du', '-f', 'reclaimable=true'], { timeoutMs: 60_000 })).stdout);
    assert.ok(rec.rows.length >= 2);
    assert.ok(rec.rows.every((r) => r.reclaimable === 'true'));
    const byId = parseTable((await runImgRootless(['-s', state, 'du', '--filter', `id=${buildSnap.slice(0, 8)}`], { timeoutMs: 60_000 })).stdout);
    assert.deepEqual(byId.rows.map((r) => r.id), [buildSnap]);
    const byDesc = parseTable((await runImgRootless(['-s', state, 'du', '-f', 'description=*make build'], { timeoutMs: 60_000 })).stdout);
    assert.deepEqual(byDesc.rows.map((r) => r.id), [buildSnap]);
    const bad = await runImgRootless(['-s', state, 'du', '-f', 'colour=blue'], { timeoutMs: 60_000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error: invalid filter "colour" — supported filters: id, description, reclaimable, type\n/);
  });

  test('prune: a snapshot another process uses is marked "*" and kept; the rest goes, the image stays usable', async () => {
    // Another img process holds the build snapshot.
    const hold = spawnAsUser([process.execPath, '--import', TSX, TOOLS, 'hold', state, BACKEND, buildSnap]);
    try {
      await waitForOutput(hold.child, 'READY');
      const du = parseTable((await runImgRootless(['-s', state, 'du'], { timeoutMs: 60_000 })).stdout);
      const held = du.rows.find((r) => r.id === `${buildSnap}*`);
      assert.ok(held, `no in-use mark:\n${du.rows.map((r) => r.id).join('\n')}`);
      assert.equal(held.reclaimable, 'false');
      const busy = await runImgRootless(['-s', state, 'prune'], { timeoutMs: 60_000 });
      assert.equal(busy.code, 0, busy.stderr);
      const t = parseTable(busy.stdout);
      assert.deepEqual(t.rows.map((r) => r.id), [junkBlob]);
      assert.deepEqual(Object.keys(t.summary), ['Reclaimed', 'Total']);
      assert.ok(fs.existsSync(path.join(state, 'snapshots', BACKEND, buildSnap)));
    } finally {
      hold.child.stdin!.end();
      await hold.done;
    }
    const res = await runImgRootless(['-s', state, 'prune'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const t = parseTable(res.stdout);
    assert.deepEqual(t.rows.map((r) => [r.id, r.reclaimable]), [[buildSnap, 'true']]);
    assert.equal(t.rows[0].description, 'mount / from exec /bin/sh -c make build');
    assert.equal(t.summary.Reclaimed, t.summary.Total);
    assert.ok(!fs.existsSync(path.join(state, 'snapshots', BACKEND, buildSnap)));
    assert.ok(fs.existsSync(path.join(state, 'snapshots', BACKEND, img.diffIds[0], 'meta.json')));
    // Nothing left to reclaim; the image still unpacks from its kept snapshot.
    const after2 = parseTable((await runImgRootless(['-s', state, 'du'], { timeoutMs: 60_000 })).stdout);
    assert.ok(after2.rows.every((r) => r.reclaimable === 'false'));
    assert.equal(after2.summary.Reclaimable, '0B');
    const again = await runImgRootless(['-s', state, '-b', BACKEND, 'unpack', '-o', path.join(state, 'again'), 'busybox'], { timeoutMs: 120_000 });
    assert.equal(again.code, 0, again.stderr);
  });

  test('prune after rm: the image\'s snapshots and blobs go too', async () => {
    const rm = await runImgRootless(['-s', state, 'rm', 'busybox'], { timeoutMs: 60_000 });
    assert.equal(rm.code, 0, rm.stderr);
    const res = await runImgRootless(['-s', state, 'prune'], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const ids = parseTable(res.stdout).rows.map((r) => r.id);
    assert.ok(ids.includes(img.diffIds[0]), ids.join('\n'));
    const du = parseTable((await runImgRootless(['-s', state, 'du'], { timeoutMs: 60_000 })).stdout);
    assert.deepEqual(du.rows, []);
    assert.equal(du.summary.Total, '0B');
  });
});
