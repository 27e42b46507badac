// What a step's snapshot work costs in files (overlayfs, as the rootless user): a commit
// leases its result through the active snapshot's lock file and removes that name; kernel
// mounts name the lower dirs themselves ("sha256:…" escaped), so no short link is made;
// a process reuses its mount points and removes them when it exits.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

describe('snapshot fixed costs (rootless, overlayfs)', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });

  test('a chain of keyed commits: files, leases, links and mount points', async () => {
    const state = tempDir('img-fixedcost-');
    dirs.push(state);
    const res = await runScriptRootless('test/snapshot/scenarios/fixedcost.ts', [state], { timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    // Each mount saw the layers below it, through lowerdir= paths with ':' in them.
    assert.deepEqual(r.seen, ['f0', 'f1', 'f2']);
    assert.deepEqual(r.links, [], 'no short link: the lower dirs fit the mount options');
    // The lease moved to the committed name: others cannot take it exclusively, may share it.
    assert.equal(r.lockBusyForOthers, true);
    assert.equal(r.sharedOk, true);
    assert.deepEqual(r.activeLocksLeft, [], "the active ids' lock files are gone after their commits");
    assert.equal(r.committedLocks, 3);
    // Five mounts one after another used one mount point.
    assert.equal(r.mountPoints, 1);
    // The committed snapshot: its meta replaced in place (no temporary file left), work/ kept.
    assert.deepEqual(r.snapshotFiles, ['fs', 'meta.json', 'work']);
    assert.deepEqual(r.meta, { id: 'sha256:' + '2'.repeat(64), kind: 'committed', key: 'sha256:' + '2'.repeat(64) });
    // The process removed its idle mount point when it exited.
    assert.deepEqual(fs.readdirSync(path.join(state, 'snapshots', 'overlayfs', 'mnt')), []);
  });
});
