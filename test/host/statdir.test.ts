// statDir (addon/statdir.cc): one directory's entries, sorted as JavaScript sorts
// strings, with the stat fields and link targets the context checksum uses; names
// that are not UTF-8 come with their bytes; entries gone between readdir and statx
// are marked, not fatal; an unreadable directory rejects with its errno.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { addonPath, loadAddon } from '../../lib/host';
import { runAsUser, skipUnlessRootless, tempDir } from '../helpers/rootless';

const statDir = loadAddon().statDir!;

function tmp(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-statdir-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('statDir lists names sorted as strings sort, with lstat fields and link targets, odd names as bytes', async (t) => {
  const dir = tmp(t);
  // U+FF01 sorts after U+1F600 as UTF-16 (0xFF01 > 0xD83D) but before it as UTF-8 bytes.
  const names = ['b', 'B', 'a-b', 'a.b', 'new\nline', 'tab\tand space ', '\u0001ctl', 'é', '\uff01bang', '😀', 'sub', 'to-file', 'to-dir', 'dangling', 'long-link'];
  for (const n of names.slice(0, 10)) fs.writeFileSync(path.join(dir, n), `data of ${n}`);
  fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o750 });
  fs.chmodSync(path.join(dir, 'sub'), 0o2750);
  fs.symlinkSync('b', path.join(dir, 'to-file'));
  fs.symlinkSync('sub', path.join(dir, 'to-dir'));
  fs.symlinkSync('/nowhere/at/all', path.join(dir, 'dangling'));
  const longTarget = `${'x'.repeat(200)}/${'é'.repeat(300)}`;
  fs.symlinkSync(longTarget, path.join(dir, 'long-link'));
  // Not UTF-8: 0xff alone, and a truncated two-byte sequence.
  const bad = [Buffer.from([0x62, 0x61, 0x64, 0xff]), Buffer.from([0x63, 0xc3])];
  for (const b of bad) fs.writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), b]), 'bytes');

  const l = await statDir(dir);
  const decoded = bad.map((b) => b.toString('utf8'));
  assert.deepEqual(l.names, [...names, ...decoded].sort(), 'every entry once, in JavaScript string order');
  assert.equal(l.stats.length, l.names.length * 6);
  const at = (n: string) => l.names.indexOf(n);
  for (const n of [...names, ...decoded]) {
    const i = at(n);
    const raw = l.raw[i];
    const p = raw ? Buffer.concat([Buffer.from(`${dir}/`), raw]) : path.join(dir, n);
    const st = fs.lstatSync(p, { bigint: true });
    const s = l.stats.subarray(i * 6, i * 6 + 6);
    assert.equal(s[0], Number(st.mode), `${n}: mode`);
    assert.equal(s[1], Number(st.size), `${n}: size`);
    assert.equal(BigInt(s[2]) * 1_000_000_000n + BigInt(s[3]), st.mtimeNs, `${n}: mtime`);
    assert.equal((BigInt(s[4]) << 32n) | BigInt(s[5]), st.ino, `${n}: inode`);
  }
  // Links are not followed; their targets come along.
  assert.equal(l.stats[at('to-dir') * 6] & fs.constants.S_IFMT, fs.constants.S_IFLNK);
  assert.equal(l.targets[at('to-file')], 'b');
  assert.equal(l.targets[at('to-dir')], 'sub');
  assert.equal(l.targets[at('dangling')], '/nowhere/at/all');
  assert.equal(l.targets[at('long-link')], longTarget);
  assert.equal(Object.keys(l.targets).length, 4, 'targets only for links');
  assert.equal(l.stats[at('sub') * 6] & 0o7777, 0o2750);
  // The names that are not UTF-8: decoded as Node decodes them, with their exact bytes.
  assert.deepEqual(Object.keys(l.raw).map(Number).sort(), decoded.map(at).sort());
  for (const [k, b] of bad.entries()) assert.deepEqual(l.raw[at(decoded[k])], b);
  // A Buffer path reaches a directory whose own name is not UTF-8.
  const badDir = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x64, 0xfe])]);
  fs.mkdirSync(badDir);
  fs.writeFileSync(Buffer.concat([badDir, Buffer.from('/inner')]), 'x');
  assert.deepEqual((await statDir(badDir)).names, ['inner']);
  await assert.rejects(statDir(path.join(dir, 'missing')), { code: 'ENOENT' });
  await assert.rejects(statDir(path.join(dir, 'b')), { code: 'ENOTDIR' });
});

test('statDir marks entries removed between readdir and statx instead of failing', async (t) => {
  const dir = tmp(t);
  const N = 2000;
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
  fs.writeFileSync(path.join(dir, 'stays'), 'kept');
  // A thread removing and recreating the files while the listings run.
  const churn = new Worker(
    `const fs = require('fs'); const { dir, n } = require('worker_threads').workerData;
     (function loop() { for (let i = 0; i < n; i++) { try { fs.unlinkSync(dir + '/f' + i); } catch {} fs.writeFileSync(dir + '/f' + i, ''); } setImmediate(loop); })();`,
    { eval: true, workerData: { dir, n: N } },
  );
  let gone = 0;
  try {
    for (let round = 0; round < 200 && gone === 0; round++) {
      const l = await statDir(dir);
      const stays = l.names.indexOf('stays');
      assert.ok(stays >= 0 && l.stats[stays * 6 + 1] === 4, 'a file nobody touches is listed with its size');
      for (let i = 0; i < l.names.length; i++) {
        const mode = l.stats[i * 6];
        if (mode === 0) gone++;
        else assert.equal(mode & fs.constants.S_IFMT, fs.constants.S_IFREG, `${l.names[i]} is a file`);
      }
    }
  } finally {
    await churn.terminate(); // before the directory is removed
  }
  assert.ok(gone > 0, 'some listing saw an entry vanish between readdir and statx (mode 0)');
});

const rootless = skipUnlessRootless();

test('statDir of a directory the user cannot read rejects with EACCES', { skip: rootless }, async () => {
  const root = tempDir('img-statdir-perm-');
  try {
    fs.mkdirSync(path.join(root, 'locked'), { mode: 0o000 });
    fs.chmodSync(path.join(root, 'locked'), 0o000);
    const script = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(addonPath())});
      m.exports.statDir(process.argv[1]).then(() => console.log('listed'), (e) => console.log(e.code, e.syscall, e.path));`;
    const r = await runAsUser([process.execPath, '-e', script, path.join(root, 'locked')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `EACCES opendir ${path.join(root, 'locked')}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
