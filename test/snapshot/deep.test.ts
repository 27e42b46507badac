// Long layer chains: 150 snapshots stacked (more than one page of absolute
// lowerdir= paths for overlayfs), on every backend, as the rootless user.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { cleanup, runScriptRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';

const N = 150;

describe('deep snapshot chains (rootless)', { skip: skipUnlessRootless() }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await cleanup(d);
  });
  for (const backend of ['overlayfs', 'fuse-overlayfs', 'native']) {
    test(`${backend}: ${N} layers mount read-only and read-write with whiteouts honoured`, async () => {
      const state = tempDir(`img-deep-${backend}-`);
      dirs.push(state);
      const res = await runScriptRootless('test/snapshot/scenarios/deep.ts', [state, backend, String(N)], { timeoutMs: 240_000 });
      assert.equal(res.code, 0, res.stderr);
      const r = JSON.parse(res.stdout.trim());
      assert.deepEqual(r, { count: N - 1, hasF0: false, last: String(N - 1), rwNames: N });
    });
  }
});
