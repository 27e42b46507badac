import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyLayer, type ApplyOptions } from '../../lib/archive/apply';
import { ContentError, DiskFullError, ImgError, UnsupportedError } from '../../lib/util/errors';
import { lgetxattr } from '../../lib/archive/sys';
import { tarOf, deepTreeTar, rawEntry, gnuLongEntries, END, gzip, zstd, stream, type FixtureEntry } from '../fixtures/layers';
import { tmp, rmrf, describeTree } from './helpers';
import { overlayFormat } from '../../lib/archive/overlay-format';

// Applying layers with their owners, device nodes and setuid bits needs root (CI runs the
// suite as root); the unprivileged path is covered by test/archive/rootless.test.ts.
const AS_ROOT = {
  skip: process.getuid?.() !== 0 ? 'needs root to apply owners, devices and setuid bits (unprivileged path: test/archive/rootless.test.ts)' : false,
};

const native = (root: string, more: Partial<ApplyOptions> = {}): ApplyOptions => ({ root, sameOwner: true, ...more });

async function apply(root: string, entries: FixtureEntry[] | Buffer, more: Partial<ApplyOptions> = {}) {
  const tar = Buffer.isBuffer(entries) ? entries : await tarOf(entries);
  return applyLayer(stream(tar), native(root, more));
}

// root is nested so that an escape would land in a known, checkable place
function sandbox(): { base: string; root: string; outside: string } {
  const base = tmp();
  const root = path.join(base, 'r1', 'r2', 'root');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(root, { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'keep');
  return { base, root, outside };
}

function listAll(dir: string): string[] {
  return Object.keys(describeTree(dir));
}

test('path traversal names are cleaned into the root', AS_ROOT, async () => {
  const { base, root, outside } = sandbox();
  try {
    await apply(root, [
      { name: '../../etc/x', body: 'a' },
      { name: '/abs/file', body: 'b' },
      { name: './c/../../../../d', body: 'c' },
      { name: 'e/./f//g', body: 'd' },
    ]);
    assert.deepEqual(listAll(root).sort(), ['abs', 'abs/file', 'd', 'e', 'e/f', 'e/f/g', 'etc', 'etc/x']);
    assert.deepEqual(fs.readdirSync(path.join(base, 'r1', 'r2')), ['root']);
    assert.deepEqual(fs.readdirSync(outside), ['secret']);
  } finally {
    rmrf(base);
  }
});

test('a symlinked parent is resolved inside the root, never outside', AS_ROOT, async () => {
  const { base, root, outside } = sandbox();
  try {
    await apply(root, [
      { name: 'a', type: 'symlink', linkname: '/' },
      { name: 'a/etc/passwd', body: 'pwned' },
      { name: 'b', type: 'symlink', linkname: '../../..' },
      { name: 'b/pwned2', body: 'x' },
      { name: 'o', type: 'symlink', linkname: outside },
      { name: 'o/secret', body: 'overwritten?' },
      { name: 'loop1', type: 'symlink', linkname: 'loop2' },
      { name: 'loop2', type: 'symlink', linkname: 'loop1' },
    ]);
    assert.equal(fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8'), 'pwned');
    assert.equal(fs.readFileSync(path.join(root, 'pwned2'), 'utf8'), 'x');
    // `o -> /tmp/.../outside` resolved under the root: root/tmp/.../outside/secret
    assert.equal(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8'), 'overwritten?');
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'keep');
    assert.notEqual(fs.readFileSync('/etc/passwd', 'utf8'), 'pwned');
    assert.deepEqual(fs.readdirSync(path.join(base, 'r1', 'r2')), ['root']);
    // a symlink loop in the parents is a clear error naming the entry
    await assert.rejects(apply(root, [{ name: 'loop1/x', body: 'x' }]), (err: unknown) => {
      assert.ok(err instanceof ImgError);
      assert.match(err.message, /"loop1\/x".*symbolic links/);
      return true;
    });
  } finally {
    rmrf(base);
  }
});

test('an existing symlink as the last component is replaced, not written through', AS_ROOT, async () => {
  const { base, root, outside } = sandbox();
  try {
    await apply(root, [{ name: 'c', type: 'symlink', linkname: path.join(outside, 'secret') }]);
    await apply(root, [{ name: 'c', body: 'new' }]);
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'keep');
    assert.ok(fs.lstatSync(path.join(root, 'c')).isFile());
    assert.equal(fs.readFileSync(path.join(root, 'c'), 'utf8'), 'new');
  } finally {
    rmrf(base);
  }
});

test('hard links resolve inside the root and must exist there', AS_ROOT, async () => {
  const { base, root, outside } = sandbox();
  try {
    const secretLinks = fs.statSync(path.join(outside, 'secret')).nlink;
    // to an absolute / climbing path that does not exist in the root: a clear error
    for (const linkname of ['/etc/passwd', '../../../../../../etc/passwd', path.join(outside, 'secret')]) {
      await assert.rejects(apply(root, [{ name: 'h', type: 'link', linkname }]), (err: unknown) => {
        assert.ok(err instanceof ContentError, String(err));
        assert.match(err.message, /layer entry "h": hard link target .* does not exist/);
        return true;
      });
    }
    // through a symlinked parent pointing outside: resolved in the root, so it fails too
    await assert.rejects(
      apply(root, [
        { name: 's', type: 'symlink', linkname: outside },
        { name: 'h2', type: 'link', linkname: 's/secret' },
      ]),
      /hard link target "s\/secret" does not exist/,
    );
    assert.equal(fs.statSync(path.join(outside, 'secret')).nlink, secretLinks);
    // to an absolute name that exists in the root: links the root's file
    await apply(root, [
      { name: 'etc/passwd', body: 'in-root' },
      { name: 'h3', type: 'link', linkname: '/etc/passwd' },
      { name: 'h4', type: 'link', linkname: '../etc/passwd' },
    ]);
    const ino = fs.statSync(path.join(root, 'etc/passwd')).ino;
    assert.equal(fs.statSync(path.join(root, 'h3')).ino, ino);
    assert.equal(fs.statSync(path.join(root, 'h4')).ino, ino);
  } finally {
    rmrf(base);
  }
});

test('deferred directory modes/times never follow a parent replaced by a symlink', AS_ROOT, async () => {
  const { base, root, outside } = sandbox();
  try {
    fs.mkdirSync(path.join(outside, 'b'), { mode: 0o755 });
    fs.utimesSync(path.join(outside, 'b'), 5000, 5000);
    await apply(root, [
      { name: 'a', type: 'directory' },
      { name: 'a/b', type: 'directory', mode: 0o700, mtime: 1234 },
      { name: 'a', type: 'symlink', linkname: outside },
    ]);
    const st = fs.statSync(path.join(outside, 'b'));
    assert.equal(st.mode & 0o777, 0o755);
    assert.equal(st.mtimeMs, 5000_000);
    assert.equal(fs.readlinkSync(path.join(root, 'a')), outside);
  } finally {
    rmrf(base);
  }
});

test('a file replaces a directory and a directory replaces a file', AS_ROOT, async () => {
  const root = tmp();
  try {
    await apply(root, [
      { name: 'd', type: 'directory' },
      { name: 'd/child', body: 'x' },
      { name: 'f', body: 'file' },
    ]);
    await apply(root, [
      { name: 'd', body: 'now a file' },
      { name: 'f', type: 'directory', mode: 0o700 },
      { name: 'f/inside', body: 'y' },
    ]);
    assert.equal(fs.readFileSync(path.join(root, 'd'), 'utf8'), 'now a file');
    assert.ok(fs.statSync(path.join(root, 'f')).isDirectory());
    assert.equal(fs.statSync(path.join(root, 'f')).mode & 0o777, 0o700);
    // within one layer too
    await apply(root, [
      { name: 'g', type: 'directory' },
      { name: 'g/x', body: '1' },
      { name: 'g', type: 'symlink', linkname: 'd' },
    ]);
    assert.equal(fs.readlinkSync(path.join(root, 'g')), 'd');
  } finally {
    rmrf(root);
  }
});

test('a 2,000-level deep tree applies, and is replaced, without recursion limits', AS_ROOT, async () => {
  const root = tmp();
  try {
    const { tar, leaf } = deepTreeTar(2000);
    await apply(root, tar);
    assert.equal(fs.readFileSync(path.join(root, leaf), 'utf8'), 'deep');
    // directory times are set after their children were written
    assert.equal(Math.floor(fs.statSync(path.join(root, 'd')).mtimeMs / 1000), 1_000_000);
    assert.equal(Math.floor(fs.statSync(path.dirname(path.join(root, leaf))).mtimeMs / 1000), 1_000_000 + 1999);
    // a file replacing the whole deep tree removes it iteratively
    await apply(root, [{ name: 'd', body: 'flat' }]);
    assert.equal(fs.readFileSync(path.join(root, 'd'), 'utf8'), 'flat');
  } finally {
    rmrf(root);
  }
});

test('metadata: owner, setuid/sticky modes, mtimes, devices, fifos', AS_ROOT, async () => {
  const root = tmp();
  try {
    await apply(root, [
      { name: 'bin', type: 'directory', mode: 0o555, mtime: 1000 },
      { name: 'bin/su', body: '#!', mode: 0o4755, uid: 0, gid: 0, mtime: 2000 },
      { name: 'bin/sg', body: '#!', mode: 0o2711, uid: 1000, gid: 1001, mtime: 2000 },
      { name: 'tmp', type: 'directory', mode: 0o1777, mtime: 3000 },
      { name: 'dev', type: 'directory' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
      { name: 'link', type: 'symlink', linkname: 'bin/su', uid: 5, gid: 6 },
    ]);
    const st = (p: string) => fs.lstatSync(path.join(root, p));
    assert.equal(st('bin').mode & 0o7777, 0o555);
    assert.equal(st('bin').mtimeMs, 1000_000);
    assert.equal(st('bin/su').mode & 0o7777, 0o4755);
    assert.equal(st('bin/sg').mode & 0o7777, 0o2711);
    assert.deepEqual([st('bin/sg').uid, st('bin/sg').gid], [1000, 1001]);
    assert.equal(st('bin/su').mtimeMs, 2000_000);
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.ok(st('dev/null').isCharacterDevice());
    assert.equal(st('dev/null').rdev, (1 << 8) | 3);
    assert.ok(st('dev/loop0').isBlockDevice());
    assert.ok(st('dev/fifo').isFIFO());
    assert.deepEqual([st('link').uid, st('link').gid], [5, 6]);
  } finally {
    rmrf(root);
  }
});

test('idMap remaps owners; sameOwner=false leaves the caller as owner', AS_ROOT, async () => {
  const root = tmp();
  const root2 = tmp();
  try {
    const entries: FixtureEntry[] = [{ name: 'f', body: 'x', uid: 10, gid: 20 }];
    await apply(root, entries, { idMap: (u, g) => [u + 100000, g + 100000] });
    assert.deepEqual([fs.statSync(path.join(root, 'f')).uid, fs.statSync(path.join(root, 'f')).gid], [100010, 100020]);
    await apply(root2, entries, { sameOwner: false });
    assert.equal(fs.statSync(path.join(root2, 'f')).uid, process.getuid!());
  } finally {
    rmrf(root);
    rmrf(root2);
  }
});

test('native whiteouts delete; opaque dirs drop lower children only', AS_ROOT, async () => {
  const root = tmp();
  try {
    await apply(root, [
      { name: 'a', type: 'directory' },
      { name: 'a/gone', body: '1' },
      { name: 'a/dir', type: 'directory' },
      { name: 'a/dir/x', body: '1' },
      { name: 'o', type: 'directory' },
      { name: 'o/lower1', body: 'l' },
      { name: 'o/sub', type: 'directory' },
      { name: 'o/sub/lower2', body: 'l' },
      { name: 'keep', body: 'k' },
    ]);
    await apply(root, [
      { name: 'a/.wh.gone', body: '' },
      { name: 'a/.wh.dir', body: '' },
      { name: 'a/.wh.never-existed', body: '' },
      // the layer's own child comes before the opaque marker: it must survive
      { name: 'o/new', body: 'n' },
      { name: 'o/.wh..wh..opq', body: '' },
      { name: 'o/after', body: 'n' },
    ]);
    assert.deepEqual(listAll(root).sort(), ['a', 'keep', 'o', 'o/after', 'o/new']);
  } finally {
    rmrf(root);
  }
});

test('overlay whiteouts become 0:0 char devices and opaque dirs get the xattr', AS_ROOT, async () => {
  const root = tmp();
  try {
    await apply(
      root,
      [
        { name: 'a', type: 'directory' },
        { name: 'a/.wh.gone', body: '' },
        { name: 'o', type: 'directory' },
        { name: 'o/.wh..wh..opq', body: '' },
        { name: 'o/new', body: 'n' },
      ],
      { format: overlayFormat('overlayfs', true) },
    );
    const wh = fs.lstatSync(path.join(root, 'a/gone'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(lgetxattr(path.join(root, 'o'), 'user.overlay.opaque')?.toString(), 'y');
    assert.deepEqual(listAll(root).sort(), ['a', 'a/gone', 'o', 'o/new']);
  } finally {
    rmrf(root);
  }
});

test('overlay format: an entry that depends on the lower layers stops an apply without them, and applies with them', AS_ROOT, async () => {
  const base = tmp();
  try {
    const fmt = overlayFormat('overlayfs', true);
    const lower = path.join(base, 'lower');
    await apply(lower, [{ name: 'etc', type: 'directory', mode: 0o750 }, { name: 'etc/passwd', body: 'p' }, { name: 'l', type: 'symlink', linkname: '/etc' }], { format: fmt, lowers: [] });
    // a missing parent (etc/ is only below), a parent that is a lower symlink, a hard link to a lower file
    const top = [{ name: 'etc/new', body: 'n' }, { name: 'l/via-link', body: 'v' }, { name: 'hl', type: 'link' as const, linkname: 'etc/passwd' }];
    const blind = await apply(path.join(base, 'blind'), top, { format: fmt });
    assert.equal(blind.needsLowers, true);
    const upper = path.join(base, 'upper');
    const r = await apply(upper, top, { format: fmt, lowers: [lower] });
    assert.equal(r.needsLowers, undefined);
    assert.deepEqual(listAll(upper).sort(), ['etc', 'etc/new', 'etc/passwd', 'etc/via-link', 'hl']);
    assert.equal(fs.statSync(path.join(upper, 'etc')).mode & 0o7777, 0o750, 'the copied-up parent keeps the lower mode');
    assert.equal(fs.statSync(path.join(upper, 'hl')).ino, fs.statSync(path.join(upper, 'etc/passwd')).ino);
  } finally {
    rmrf(base);
  }
});

test('PAX long names, GNU long names and links, user xattrs', AS_ROOT, async () => {
  const root = tmp();
  try {
    const longDir = Array.from({ length: 30 }, (_, i) => `component-${i}`).join('/');
    const longName = longDir + '/' + 'n'.repeat(200);
    const gnuName = 'gnu/' + 'g'.repeat(150);
    const gnuLink = 'gnu/' + 'l'.repeat(150);
    const target = '../' + 't'.repeat(180);
    const tarA = await tarOf([
      { name: longName, body: 'pax-long' },
      { name: 'ünïcödé-名前', body: 'utf8' },
      { name: 'x', body: 'xattr', pax: { 'SCHILY.xattr.user.mime': 'text/plain', 'SCHILY.xattr.security.bogus': 'skipped' } },
    ]);
    await applyLayer(stream(tarA), native(root, { onDebug: () => {} }));
    const tarB = Buffer.concat([gnuLongEntries(gnuName, 'gnu-long', gnuLink, target), END]);
    await applyLayer(stream(tarB), native(root));
    assert.equal(fs.readFileSync(path.join(root, longName), 'utf8'), 'pax-long');
    assert.equal(fs.readFileSync(path.join(root, 'ünïcödé-名前'), 'utf8'), 'utf8');
    assert.equal(lgetxattr(path.join(root, 'x'), 'user.mime')?.toString(), 'text/plain');
    assert.equal(fs.readFileSync(path.join(root, gnuName), 'utf8'), 'gnu-long');
    assert.equal(fs.readlinkSync(path.join(root, gnuLink)), target);
  } finally {
    rmrf(root);
  }
});

test('gzip, zstd and plain layers apply with the same diffID', AS_ROOT, async () => {
  const tar = await tarOf([
    { name: 'etc', type: 'directory' },
    { name: 'etc/hostname', body: 'img\n' },
    { name: 'big', body: Buffer.alloc(3 * 1024 * 1024 + 7, 'abc') },
  ]);
  const ids = new Set<string>();
  for (const blob of [tar, gzip(tar), zstd(tar)]) {
    const root = tmp();
    try {
      const r = await applyLayer(stream(blob), native(root));
      assert.equal(r.size, tar.length);
      ids.add(r.diffId);
      assert.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'img\n');
      assert.equal(fs.statSync(path.join(root, 'big')).size, 3 * 1024 * 1024 + 7);
    } finally {
      rmrf(root);
    }
  }
  assert.equal(ids.size, 1);
});

test('corrupt input is a ContentError, an unsupported entry an UnsupportedError', AS_ROOT, async () => {
  const root = tmp();
  const contentError = (text: RegExp) => (err: Error) => err instanceof ContentError && text.test(err.message);
  try {
    const tar = await tarOf([{ name: 'f', body: Buffer.alloc(5000, 1) }]);
    await assert.rejects(applyLayer(stream(tar.subarray(0, 2048)), native(root)), contentError(/layer tar is truncated/));
    const bad = Buffer.from(tar);
    bad[10] ^= 0xff; // breaks the header checksum
    await assert.rejects(applyLayer(stream(bad), native(root)), contentError(/invalid tar header checksum/));
    await assert.rejects(applyLayer(stream(gzip(tar).subarray(0, 40)), native(root)), (err: Error) => /unexpected end|truncated/i.test(err.message));
    await assert.rejects(applyLayer(stream(Buffer.from('not a tar at all')), native(root)), /truncated|checksum/);
    const sparse = Buffer.concat([rawEntry({ name: 'sp', typeflag: 'S', magic: 'gnu' }), END]);
    await assert.rejects(applyLayer(stream(sparse), native(root)), (err: Error) => err instanceof UnsupportedError && /unsupported type 'S' \(GNU sparse\)/.test(err.message));
  } finally {
    rmrf(root);
  }
});

// A full disk is the host's fault, not the layer's: DiskFullError, same message shape.
test('a layer that fills the disk is a DiskFullError naming the entry', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs to fill' : false }, async () => {
  const root = tmp();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', root]);
  try {
    const tar = await tarOf([{ name: 'big', body: Buffer.alloc(256 * 1024, 7) }]);
    await assert.rejects(applyLayer(stream(tar), native(root)), (err: Error) => {
      assert.ok(err instanceof DiskFullError, String(err));
      assert.equal(err.code, 'IMG_ERR_DISK_FULL');
      assert.match(err.message, /^layer entry "big": .*\(ENOSPC\)$/);
      return true;
    });
  } finally {
    execFileSync('umount', [root]);
    rmrf(root);
  }
});

// Regular files are written off the JS thread (host/layerops.ts) and, past a number of
// files in flight or when they carry xattrs, here: the tree is the same either way. A
// file capability survives: it is set after the file's last write (a write drops it).
test('a layer of many files: queued and direct writes give the same files; a file capability survives its data', AS_ROOT, async () => {
  const root = tmp();
  try {
    const capability = Buffer.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // v2: cap_net_bind_service
    const entries: FixtureEntry[] = [{ name: 'd/', type: 'directory', mode: 0o750, uid: 7, gid: 8 }];
    for (let i = 0; i < 700; i++) {
      const body = Buffer.alloc(i % 50 === 0 ? 300_000 : i % 7, i & 255);
      entries.push({ name: `d/f${i}`, body, mode: [0o4755, 0o2750, 0o600, 0o1400][i % 4], uid: 1000 + (i % 13), gid: 3000 + (i % 5), mtime: 1_500_000_000 + i });
    }
    entries.push({ name: 'd/link', type: 'link', linkname: 'd/f3' }); // a hard link to a file maybe still in flight
    entries.push({ name: 'bin/ping', body: Buffer.alloc(200_000, 9), mode: 0o755, pax: { 'SCHILY.xattr.security.capability': capability.toString('latin1') } });
    await apply(root, entries);
    for (let i = 0; i < 700; i++) {
      const p = path.join(root, 'd', `f${i}`);
      const st = fs.lstatSync(p);
      assert.equal(st.mode & 0o7777, [0o4755, 0o2750, 0o600, 0o1400][i % 4], `f${i} mode`);
      assert.deepEqual([st.uid, st.gid, st.mtimeMs / 1000], [1000 + (i % 13), 3000 + (i % 5), 1_500_000_000 + i], `f${i} owner and time`);
      assert.ok(fs.readFileSync(p).equals(Buffer.alloc(i % 50 === 0 ? 300_000 : i % 7, i & 255)), `f${i} data`);
    }
    assert.equal(fs.lstatSync(path.join(root, 'd/link')).ino, fs.lstatSync(path.join(root, 'd/f3')).ino);
    const d = fs.lstatSync(path.join(root, 'd'));
    assert.deepEqual([d.mode & 0o7777, d.uid, d.gid], [0o750, 7, 8]);
    assert.ok(fs.readFileSync(path.join(root, 'bin/ping')).equals(Buffer.alloc(200_000, 9)));
    assert.deepEqual(lgetxattr(path.join(root, 'bin/ping'), 'security.capability'), capability);
  } finally {
    rmrf(root);
  }
});

// xattrs the filesystem cannot hold are the layer's doing: ext4 answers ENOSPC when one
// inode's xattrs outgrow their block, with the disk far from full; not a DiskFullError.
test('xattrs beyond what the filesystem stores for one file are a ContentError naming the entry, not a full disk', async () => {
  const root = tmp();
  try {
    const big = { name: 'big', body: 'x', pax: { 'SCHILY.xattr.user.big': 'v'.repeat(70_000) } }; // above XATTR_SIZE_MAX
    await assert.rejects(apply(root, [big], { sameOwner: false }), (err: Error & { hint?: string }) => {
      assert.ok(err instanceof ContentError, `${err.constructor.name}: ${err.message}`);
      assert.equal(err.message, 'layer entry "big": cannot set xattr user.big (70000 bytes, 1 xattrs on the entry): more than the filesystem stores for one file (E2BIG)');
      assert.match(err.hint ?? '', /more extended attributes than this filesystem holds/);
      return true;
    });
    const pax: Record<string, string> = {};
    for (let i = 0; i < 40; i++) pax[`SCHILY.xattr.user.k${i}`] = 'v'.repeat(1000);
    // 40 KB of xattrs: ext4 refuses them (ENOSPC), XFS and tmpfs may take them.
    await apply(root, [{ name: 'many', body: 'x', pax }], { sameOwner: false }).then(
      () => assert.equal(lgetxattr(path.join(root, 'many'), 'user.k39')?.length, 1000),
      (err: Error) => {
        assert.ok(err instanceof ContentError && !(err instanceof DiskFullError), `${err.constructor.name}: ${err.message}`);
        assert.match(err.message, /^layer entry "many": cannot set xattr user\.k\d+ \(1000 bytes, 40 xattrs on the entry\): more than the filesystem stores for one file \(ENOSPC\)$/);
        return undefined;
      },
    );
  } finally {
    rmrf(root);
  }
});

test('a user.* xattr on a symlink (which Linux cannot hold) is dropped, the link applied; on a file it is kept', AS_ROOT, async () => {
  const root = tmp();
  try {
    const tar = await tarOf([
      { name: 'target', body: 't', pax: { 'SCHILY.xattr.user.k': 'on-file' } },
      { name: 'l', type: 'symlink', linkname: 'target', pax: { 'SCHILY.xattr.user.k': 'on-link' } },
    ]);
    const debug: string[] = [];
    await applyLayer(stream(tar), native(root, { onDebug: (m) => debug.push(m) }));
    assert.equal(fs.readlinkSync(path.join(root, 'l')), 'target');
    assert.equal(lgetxattr(path.join(root, 'target'), 'user.k')?.toString(), 'on-file');
    assert.ok(debug.includes('layer entry l: xattr user.k not set (EPERM)'), debug.join('\n'));
  } finally {
    rmrf(root);
  }
});
