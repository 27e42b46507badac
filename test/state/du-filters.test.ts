// `img du --filter`: which rows each key keeps. The description filter is a
// whole-string wildcard of util/glob.ts: '*' crosses '/', '[' is an ordinary
// character; without '*' or '?' it is a substring test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUsageFilters, type UsageRow } from '../../lib/state/du';

const row = (id: string, description: string, reclaimable = true): UsageRow => ({ id, type: 'snapshot', inUse: false, reclaimable, size: 1, description });
const rows = [
  row('sha256:aaa1', '[stage 1/2] RUN make build'),
  row('sha256:bbb2', 'pulled from docker.io/library/busybox:latest', false),
  row('sha256:ccc3', 'mount / from exec /bin/sh -c apt-get update'),
];
const keep = (...f: string[]) => rows.filter(parseUsageFilters(f)).map((r) => r.id.slice(7));

test('du filters: description wildcard over the whole text, substring otherwise; keys AND, values OR', () => {
  assert.deepEqual(keep('description=*make build'), ['aaa1']);
  assert.deepEqual(keep('description=pulled from *'), ['bbb2'], "'*' crosses '/'");
  assert.deepEqual(keep('description=[stage 1/2]*'), ['aaa1'], "'[' is an ordinary character");
  assert.deepEqual(keep('description=?stage*'), ['aaa1']);
  assert.deepEqual(keep('description=*apt-get\\*'), [], 'an escaped star is a star');
  assert.deepEqual(keep('description=RUN make'), ['aaa1'], 'substring without wildcards');
  assert.deepEqual(keep('description=*busybox*', 'description=*make*'), ['aaa1', 'bbb2']);
  assert.deepEqual(keep('description=*busybox*', 'reclaimable=true'), []);
  assert.deepEqual(keep('id=ccc'), ['ccc3']);
});
