// /etc/subuid parsing (by name and by uid, as shadow does) and the map built from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildIdMap, parseProcIdMap, parseSubIds, toHostId } from '../../lib/exec/idmap';

const FILE = `# comment
alice:100000:65536
1001:300000:1000
bob:200000:65536
alice:500000:10
broken:line
alice:x:5
`;

test('ranges match by user name and by numeric uid, in file order', () => {
  assert.deepEqual(parseSubIds(FILE, 'alice', 1001), [
    { start: 100000, count: 65536 },
    { start: 300000, count: 1000 },
    { start: 500000, count: 10 },
  ]);
  assert.deepEqual(parseSubIds(FILE, 'bob', 2000), [{ start: 200000, count: 65536 }]);
  assert.deepEqual(parseSubIds(FILE, undefined, 1001), [{ start: 300000, count: 1000 }]);
  assert.deepEqual(parseSubIds(FILE, 'carol', 3000), []);
});

test('the map puts the caller at 0 and the ranges after it', () => {
  const map = buildIdMap(1001, [
    { start: 100000, count: 65536 },
    { start: 500000, count: 10 },
  ]);
  assert.deepEqual(map, [
    { inside: 0, outside: 1001, count: 1 },
    { inside: 1, outside: 100000, count: 65536 },
    { inside: 65537, outside: 500000, count: 10 },
  ]);
  assert.equal(toHostId(map, 0), 1001);
  assert.equal(toHostId(map, 1000), 100999);
  assert.equal(toHostId(map, 65537), 500000);
  assert.equal(toHostId(map, 70000), undefined);
  assert.deepEqual(parseProcIdMap('         0       1001          1\n         1     100000      65536\n'), map.slice(0, 2));
});
