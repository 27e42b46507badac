// The tar codec on its own: what encodeHeader writes, TarParser (and GNU tar) read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeHeader, TarParser, END_OF_ARCHIVE, type TarHeader, type WriteHeader } from '../../lib/archive/tar';
import { toBytes } from '../../lib/util/bytenames';
import { ContentError } from '../../lib/util/errors';
import { rawEntry, rawHeader } from '../fixtures/layers';
import { tmp, rmrf } from './helpers';

function parse(buf: Buffer, chunk = 7): TarHeader[] {
  const out: TarHeader[] = [];
  const p = new TarParser({ entry: (h) => out.push(h), data: () => {}, endEntry: () => {} });
  for (let i = 0; i < buf.length; i += chunk) p.push(buf.subarray(i, i + chunk)); // odd chunking on purpose
  p.end();
  return out;
}

const base: WriteHeader = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000 };

test('headers round-trip through PAX when ustar cannot hold a value', () => {
  const cases: WriteHeader[] = [
    { ...base, name: 'a/'.repeat(120) + 'long-name' },
    { ...base, name: toBytes('ünïcödé/名前') }, // names are byte strings (util/bytenames.ts)
    { ...base, name: '\xff\xc3\x28-not-utf8' },
    { ...base, name: 'l', type: 'symlink', linkname: '../'.repeat(60) + 'target' },
    { ...base, name: 'ids', uid: 3_000_000, gid: 4_000_000 },
    { ...base, name: 'x', xattrs: [['user.bin', Buffer.from([0, 1, 2, 255, 10, 61])], ['user.txt', Buffer.from('a=b\n')]] },
    { ...base, name: 'd', type: 'dir', mode: 0o1777 },
    { ...base, name: 'dev', type: 'char', devmajor: 1, devminor: 3 },
  ];
  const encoded = cases.map((h) => encodeHeader(h));
  const got = parse(Buffer.concat([...encoded, END_OF_ARCHIVE]));
  assert.equal(got.length, cases.length);
  // A scratch block (writeLayer's, reused for every entry, dirty from the one before) gives the same bytes.
  const scratch = Buffer.alloc(512, 0xaa);
  cases.forEach((h, i) => assert.ok(encodeHeader(h, scratch).equals(encoded[i]), `${JSON.stringify(h.name)} with a scratch block`));
  cases.forEach((c, i) => {
    const g = got[i];
    assert.equal(g.name.replace(/\/$/, ''), c.name);
    assert.equal(g.type, c.type);
    assert.equal(g.mode, c.mode);
    assert.equal(g.uid, c.uid);
    assert.equal(g.gid, c.gid);
    assert.equal(g.mtime, c.mtime);
    if (c.linkname) assert.equal(g.linkname, c.linkname);
    if (c.devmajor) assert.deepEqual([g.devmajor, g.devminor], [c.devmajor, c.devminor]);
    if (c.xattrs) assert.deepEqual([...g.xattrs!], c.xattrs);
  });
});

test('a size above 8 GiB goes to PAX (header only; GNU tar agrees)', () => {
  const size = 10 * 1024 ** 3 + 1;
  const hdr = encodeHeader({ ...base, name: 'huge', size });
  let seen = -1;
  const p = new TarParser({ entry: (h) => (seen = h.size), data: () => {}, endEntry: () => {} });
  p.push(hdr);
  assert.equal(seen, size);
  const dir = tmp();
  try {
    const f = path.join(dir, 'h.tar');
    fs.writeFileSync(f, hdr); // GNU tar lists the header before it misses the body
    const out = execFileSync('sh', ['-c', `tar -tvf '${f}' 2>/dev/null || true`], { encoding: 'utf8' });
    assert.match(out, /10737418241 .*huge/);
  } finally {
    rmrf(dir);
  }
});

test('base-256 numbers (GNU/star extension) are read', () => {
  const h = encodeHeader({ ...base, name: 'b256', size: 3 });
  // rewrite size as base-256 and recompute the checksum
  h.fill(0, 124, 136);
  h[124] = 0x80;
  h[135] = 3;
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  const got = parse(Buffer.concat([h, Buffer.from('abc'), Buffer.alloc(509), END_OF_ARCHIVE]), 512);
  assert.equal(got[0].size, 3);
});

// PAX records are buffered until their entry: however many headers carry them, what comes
// before one entry (and the global records) is capped as Go's archive/tar caps one header,
// so a small gzip of many PAX headers cannot fill memory.
test('metadata headers before one entry, or global ones, are capped at 1 MiB in all; a bad header names the entry before it', () => {
  const paxHeader = (flag: string, key: string, valueLength: number): Buffer => {
    const records: Buffer[] = [];
    for (let i = 0, n = 0; n < valueLength; i++) {
      const kv = `${key}${i}=${'v'.repeat(1000)}\n`;
      const len = kv.length + 1 + String(kv.length + 5).length; // "<len> " counts itself (4-digit lengths here)
      records.push(Buffer.from(`${len} ${kv}`));
      n += len;
    }
    return rawEntry({ name: 'PaxHeader', typeflag: flag }, Buffer.concat(records));
  };
  const file = rawEntry({ name: 'f', typeflag: '0' }, Buffer.from('x'));
  // Two headers of 600 KiB each before one entry: 1.2 MiB of records for it.
  assert.throws(
    () => parse(Buffer.concat([file, paxHeader('x', 'SCHILY.xattr.user.a', 600 << 10), paxHeader('x', 'SCHILY.xattr.user.b', 600 << 10), file, END_OF_ARCHIVE]), 64 << 10),
    (err: Error) => err instanceof ContentError && err.message === `tar metadata headers after entry "f" add up to more than 1048576 bytes`,
  );
  // The same amount spread over two entries is fine.
  const ok = parse(Buffer.concat([paxHeader('x', 'SCHILY.xattr.user.a', 600 << 10), file, paxHeader('x', 'SCHILY.xattr.user.b', 600 << 10), file, END_OF_ARCHIVE]), 64 << 10);
  assert.deepEqual(ok.map((h) => [h.name, h.xattrs?.size]), [['f', 598], ['f', 598]]);
  // Global records add up over the whole tar.
  assert.throws(
    () => parse(Buffer.concat([paxHeader('g', 'SCHILY.xattr.user.a', 600 << 10), file, paxHeader('g', 'SCHILY.xattr.user.b', 600 << 10), file, END_OF_ARCHIVE]), 64 << 10),
    /tar global PAX headers after entry "f" add up to more than 1048576 bytes/,
  );
  // One header above the cap is refused before its body is read.
  assert.throws(() => parse(rawHeader({ name: 'PaxHeader', typeflag: 'x', size: 2 << 20 })), /tar metadata header of 2097152 bytes is too large/);
  // A broken header after an entry names that entry.
  const bad = Buffer.from(rawEntry({ name: 'next', typeflag: '0' }));
  bad[0] ^= 1;
  assert.throws(() => parse(Buffer.concat([file, bad])), (err: Error) => err instanceof ContentError && err.message === 'invalid tar header checksum (after 1 entries, the last "f")');
});
