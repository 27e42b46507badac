// probeHost(): what diagnostics add to the addon's probe about rootless operation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { probeHost } from '../../lib/exec/probe';

test('probeHost adds subordinate ranges and the uidmap helpers', async () => {
  const h = await probeHost();
  assert.equal(h.kernel, os.release());
  assert.ok(Array.isArray(h.subuid));
  assert.ok(Array.isArray(h.subgid));
  assert.equal(h.newuidmap !== undefined, fs.existsSync('/usr/bin/newuidmap'));
  assert.equal(h.newgidmap !== undefined, fs.existsSync('/usr/bin/newgidmap'));
});
