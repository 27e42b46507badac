// `-b auto` decides once per filesystem for a user, not once per state dir:
// the probe mounts and unmounts an overlay, and that unmount syncs the whole
// filesystem under the state dir (a cold build's first step waited on it).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup, rootlessUser, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

describe('snapshotter auto: the verdict is kept for the user', { skip: skipUnlessRootless() }, () => {
  const work = tempDir('img-sn-auto-');
  after(() => cleanup(work));

  test('a second state dir on the same filesystem takes the cached verdict without probing', { timeout: 60_000 }, async () => {
    const cacheHome = path.join(work, 'cache');
    const res = await runScriptRootless('test/snapshot/scenarios/auto.ts', [work], { env: { XDG_CACHE_HOME: cacheHome }, timeoutMs: 60_000 });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    assert.equal(r.first.probed, true);
    assert.ok(['overlayfs', 'fuse-overlayfs', 'native'].includes(r.first.backend), JSON.stringify(r.first));
    // One entry for this filesystem, the same verdict the state dir got.
    const entries = Object.values(r.hostAfterFirst);
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0], r.first.stateVerdict);
    assert.deepEqual(r.second, { backend: r.first.backend, probed: false, stateVerdict: r.first.stateVerdict });
    assert.equal(r.third.backend, 'native');
    assert.equal(r.third.probed, false);
    assert.deepEqual(r.third.stateVerdict.reasons, { overlayfs: 'edited by the test' });
    assert.equal(r.again.backend, r.first.backend);
    // Private to the user, as the code cache beside it.
    const u = rootlessUser()!;
    const st = fs.statSync(path.join(cacheHome, 'img'));
    assert.equal(st.uid, u.uid);
    assert.equal(st.mode & 0o777, 0o700);
  });
});
