import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { applyLayer } from '../../lib/archive/apply';
import { compareDirs, overlayChanges, writeLayer, type Change } from '../../lib/archive/diff';
import { createLayerBlob } from '../../lib/archive/layer';
import type { Compression } from '../../lib/archive/compression';
import { extract } from 'tar-stream';
import { lgetxattr, lsetxattr, mknod, S_IFCHR } from '../../lib/archive/sys';
import { stream, tarOf } from '../fixtures/layers';
import { tmp, rmrf, describeTree } from './helpers';
import { overlayFormat, type DiskFormat } from '../../lib/archive/overlay-format';

// Applying layers with their owners, device nodes and setuid bits needs root (CI runs the
// suite as root); the unprivileged path is covered by test/archive/rootless.test.ts.
const AS_ROOT = {
  skip: process.getuid?.() !== 0 ? 'needs root to apply owners, devices and setuid bits (unprivileged path: test/archive/rootless.test.ts)' : false,
};

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function w(p: string, body: string, mtimeSec?: number): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, body);
  if (mtimeSec !== undefined) fs.utimesSync(p, mtimeSec, mtimeSec);
}

/** A file sink that also hashes, like the content store's ingest stream would. */
function fileSink(p: string): { stream: Writable; sha: () => string } {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'w');
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      fs.write(fd, chunk, 0, chunk.length, null, (err) => cb(err));
    },
    final(cb) {
      fs.close(fd, cb);
    },
  });
  return { stream, sha: () => 'sha256:' + h.digest('hex') };
}

/** A rich tree: dirs, files, setuid, symlinks, hard links, fifo, device, xattrs, long/unicode names. */
function richTree(root: string): void {
  w(path.join(root, 'etc/hostname'), 'img\n');
  w(path.join(root, 'bin/tool'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(root, 'bin/tool'), 0o4755);
  fs.symlinkSync('tool', path.join(root, 'bin/alias'));
  fs.symlinkSync('/etc/hostname', path.join(root, 'abs-link'));
  fs.linkSync(path.join(root, 'bin/tool'), path.join(root, 'bin/tool-hard'));
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  execFileSync('mkfifo', [path.join(root, 'tmp/fifo')]);
  fs.mkdirSync(path.join(root, 'dev'));
  mknod(path.join(root, 'dev/null'), S_IFCHR | 0o666, 1, 3);
  const long = path.join(root, Array.from({ length: 12 }, (_, i) => `long-directory-${i}`).join('/'), 'f'.repeat(120));
  w(long, 'long');
  w(path.join(root, 'ünï/名前.txt'), 'utf8');
  w(path.join(root, 'x/attr'), 'x');
  lsetxattr(path.join(root, 'x/attr'), 'user.mime', Buffer.from('text/plain'));
  w(path.join(root, 'owned'), 'o');
  fs.chownSync(path.join(root, 'owned'), 1234, 5678);
  w(path.join(root, 'big.bin'), 'z'.repeat(3 * 1024 * 1024 + 3));
  fs.mkdirSync(path.join(root, 'empty-dir'));
  // fixed times everywhere (dirs last) so copies compare equal
  execFileSync('find', [root, '-depth', '-exec', 'touch', '-h', '-d', '@1600000000', '{}', '+']);
}

async function layerOf(changes: AsyncIterable<Change & { opaque?: boolean }>, src: string, c: Compression, out: string, epoch?: number, format?: DiskFormat) {
  const sink = fileSink(out);
  const r = await createLayerBlob(writeLayer(changes, src, { sourceDateEpoch: epoch, format }), c, sink.stream);
  assert.equal(r.digest, sink.sha());
  assert.equal(r.size, fs.statSync(out).size);
  return r;
}

test('compareDirs: adds, deletes, modifications, by the documented rules', AS_ROOT, async () => {
  const base = tmp();
  const lower = path.join(base, 'lower');
  const upper = path.join(base, 'upper');
  try {
    w(path.join(lower, 'same'), 'same', 1000);
    w(path.join(lower, 'gone'), 'x', 1000);
    w(path.join(lower, 'gonedir/a/b'), 'x', 1000);
    w(path.join(lower, 'resized'), 'short', 1000);
    w(path.join(lower, 'coarse'), 'AAAA', 1000); // whole-second mtime: content decides
    w(path.join(lower, 'coarse-same'), 'BBBB', 1000);
    w(path.join(lower, 'mode'), 'm', 1000);
    w(path.join(lower, 'owner'), 'o', 1000);
    w(path.join(lower, 'xattr'), 'x', 1000);
    w(path.join(lower, 'becomes-dir'), 'f', 1000);
    fs.symlinkSync('a', path.join(lower, 'link'));
    w(path.join(lower, 'sub/keep'), 'k', 1000);
    execFileSync('cp', ['-a', lower, upper]);
    fs.rmSync(path.join(upper, 'gone'));
    fs.rmSync(path.join(upper, 'gonedir'), { recursive: true });
    w(path.join(upper, 'resized'), 'longer', 1000);
    w(path.join(upper, 'coarse'), 'CCCC', 1000);
    fs.chmodSync(path.join(upper, 'mode'), 0o600);
    fs.chownSync(path.join(upper, 'owner'), 7, 7);
    lsetxattr(path.join(upper, 'xattr'), 'user.k', Buffer.from('v'));
    fs.rmSync(path.join(upper, 'becomes-dir'));
    w(path.join(upper, 'becomes-dir/child'), 'c', 1000);
    fs.unlinkSync(path.join(upper, 'link'));
    fs.symlinkSync('b', path.join(upper, 'link'));
    w(path.join(upper, 'sub/new'), 'n', 1000);
    // dir mtime restored (ns) → only the new child shows, not the dir
    execFileSync('touch', ['-r', path.join(lower, 'sub'), path.join(upper, 'sub')]);
    execFileSync('touch', ['-r', lower, upper]);

    const got = await collect(compareDirs(lower, upper));
    assert.deepEqual(got, [
      { path: '/becomes-dir', kind: 'modify' },
      { path: '/becomes-dir/child', kind: 'add' },
      { path: '/coarse', kind: 'modify' },
      { path: '/gone', kind: 'delete' },
      { path: '/gonedir', kind: 'delete' },
      { path: '/link', kind: 'modify' },
      { path: '/mode', kind: 'modify' },
      { path: '/owner', kind: 'modify' },
      { path: '/resized', kind: 'modify' },
      { path: '/sub/new', kind: 'add' },
      { path: '/xattr', kind: 'modify' },
    ]);
    // against nothing: everything is an add, parents first, sorted
    const all = await collect(compareDirs(null, upper));
    assert.ok(all.every((c) => c.kind === 'add'));
    assert.deepEqual(
      all.map((c) => c.path),
      ['/becomes-dir', '/becomes-dir/child', '/coarse', '/coarse-same', '/link', '/mode', '/owner', '/resized', '/same', '/sub', '/sub/keep', '/sub/new', '/xattr'],
    );
  } finally {
    rmrf(base);
  }
});

test('overlayChanges reads whiteout devices, .wh. files and opaque markers', AS_ROOT, async () => {
  const upper = tmp();
  try {
    w(path.join(upper, 'a/new'), 'n');
    mknod(path.join(upper, 'a/deleted'), S_IFCHR, 0, 0);
    w(path.join(upper, 'b/.wh.fuse-deleted'), '');
    fs.mkdirSync(path.join(upper, 'opq-x'));
    lsetxattr(path.join(upper, 'opq-x'), 'user.overlay.opaque', Buffer.from('y'));
    w(path.join(upper, 'opq-x/inside'), 'i');
    w(path.join(upper, 'opq-f/.wh..wh..opq'), '');
    mknod(path.join(upper, 'realdev'), S_IFCHR | 0o600, 1, 3); // a device that is not 0:0 is content
    const got = await collect(overlayChanges(upper, overlayFormat('overlayfs', true)));
    assert.deepEqual(got, [
      { path: '/a', kind: 'add' },
      { path: '/a/deleted', kind: 'delete' },
      { path: '/a/new', kind: 'add' },
      { path: '/b', kind: 'add' },
      { path: '/b/fuse-deleted', kind: 'delete' },
      { path: '/opq-f', kind: 'add', opaque: true },
      { path: '/opq-x', kind: 'add', opaque: true },
      { path: '/opq-x/inside', kind: 'add' },
      { path: '/realdev', kind: 'add' },
    ]);
  } finally {
    rmrf(upper);
  }
});

test('round trip: tree → layer (gzip, zstd, none) → apply → same tree', AS_ROOT, async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    richTree(src);
    const want = describeTree(src, { times: true, xattrs: true, ino: true });
    const diffIds = new Set<string>();
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const blob = path.join(base, `layer.${c}`);
      const r = await layerOf(compareDirs(null, src), src, c, blob);
      diffIds.add(r.diffId);
      assert.equal(r.mediaType, c === 'none' ? 'application/vnd.oci.image.layer.v1.tar' : `application/vnd.oci.image.layer.v1.tar+${c}`);
      if (c === 'none') assert.equal(r.digest, r.diffId);
      const dst = path.join(base, `dst-${c}`);
      const a = await applyLayer(fs.createReadStream(blob), { root: dst, sameOwner: true });
      assert.equal(a.diffId, r.diffId);
      assert.equal(a.size, r.uncompressedSize);
      assert.deepEqual(describeTree(dst, { times: true, xattrs: true, ino: true }), want);
    }
    assert.equal(diffIds.size, 1);
  } finally {
    rmrf(base);
  }
});

test('identical content gives identical digests; SOURCE_DATE_EPOCH clamps mtimes', AS_ROOT, async () => {
  const base = tmp();
  try {
    const a = path.join(base, 'a');
    const b = path.join(base, 'elsewhere/b');
    richTree(a);
    fs.mkdirSync(path.dirname(b));
    execFileSync('cp', ['-a', a, b]);
    const ra = await layerOf(compareDirs(null, a), a, 'gzip', path.join(base, 'a.tgz'));
    const rb = await layerOf(compareDirs(null, b), b, 'gzip', path.join(base, 'b.tgz'));
    assert.equal(ra.digest, rb.digest);
    assert.equal(ra.diffId, rb.diffId);
    const rz1 = await layerOf(compareDirs(null, a), a, 'zstd', path.join(base, 'a.zst'));
    const rz2 = await layerOf(compareDirs(null, b), b, 'zstd', path.join(base, 'b.zst'));
    assert.equal(rz1.digest, rz2.digest);

    const epoch = 1_500_000_000;
    const rc = await layerOf(compareDirs(null, a), a, 'none', path.join(base, 'c.tar'), epoch);
    assert.notEqual(rc.diffId, ra.diffId);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', path.join(base, 'c.tar')], { encoding: 'utf8' });
    assert.ok(!listing.includes('2020-09-13'), 'mtimes after the epoch are clamped');
    assert.ok(listing.includes('2017-07-14'), listing.slice(0, 300));
  } finally {
    rmrf(base);
  }
});

test('overlay upper dir → layer with whiteouts and opaque dirs → applied on the lower gives the merged tree', AS_ROOT, async () => {
  const base = tmp();
  try {
    const lower = path.join(base, 'lower');
    w(path.join(lower, 'keep'), 'k');
    w(path.join(lower, 'del'), 'd');
    w(path.join(lower, 'deldir/x'), 'x');
    w(path.join(lower, 'opq/old'), 'o');
    w(path.join(lower, 'mod'), 'old');
    const upper = path.join(base, 'upper');
    fs.mkdirSync(upper, { recursive: true });
    mknod(path.join(upper, 'del'), S_IFCHR, 0, 0);
    mknod(path.join(upper, 'deldir'), S_IFCHR, 0, 0);
    fs.mkdirSync(path.join(upper, 'opq'));
    lsetxattr(path.join(upper, 'opq'), 'user.overlay.opaque', Buffer.from('y'));
    w(path.join(upper, 'opq/new'), 'n');
    w(path.join(upper, 'mod'), 'new');
    w(path.join(upper, 'added/deep/file'), 'a');
    const blob = path.join(base, 'l.tar.gz');
    const fmt = overlayFormat('overlayfs', true);
    await layerOf(overlayChanges(upper, fmt), upper, 'gzip', blob, undefined, fmt);
    const listing = execFileSync('tar', ['-tzf', blob], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing, ['added/', 'added/deep/', 'added/deep/file', '.wh.del', '.wh.deldir', 'mod', 'opq/', 'opq/.wh..wh..opq', 'opq/new']);
    // native apply on a copy of the lower = the merged view
    const merged = path.join(base, 'merged');
    execFileSync('cp', ['-a', lower, merged]);
    await applyLayer(fs.createReadStream(blob), { root: merged, sameOwner: true });
    assert.deepEqual(Object.keys(describeTree(merged)).sort(), ['added', 'added/deep', 'added/deep/file', 'keep', 'mod', 'opq', 'opq/new']);
    assert.equal(fs.readFileSync(path.join(merged, 'mod'), 'utf8'), 'new');
    // overlay-format apply into an empty dir reproduces the upper dir
    const upper2 = path.join(base, 'upper2');
    await applyLayer(fs.createReadStream(blob), { root: upper2, format: overlayFormat('overlayfs', true), sameOwner: true });
    assert.deepEqual(describeTree(upper2, { xattrs: true }), describeTree(upper, { xattrs: true }));
  } finally {
    rmrf(base);
  }
});

test('native diff → layer → applied on a copy of the lower gives the upper', AS_ROOT, async () => {
  const base = tmp();
  try {
    const lower = path.join(base, 'lower');
    richTree(lower);
    const upper = path.join(base, 'upper');
    execFileSync('cp', ['-a', lower, upper]);
    fs.rmSync(path.join(upper, 'etc'), { recursive: true });
    w(path.join(upper, 'bin/tool'), 'rewritten');
    fs.rmSync(path.join(upper, 'tmp/fifo'));
    w(path.join(upper, 'tmp/fifo/now-a-dir'), 'd');
    w(path.join(upper, 'new/file'), 'n');
    fs.symlinkSync('elsewhere', path.join(upper, 'x/link'));
    const blob = path.join(base, 'l.tar.zst');
    await layerOf(compareDirs(lower, upper), upper, 'zstd', blob);
    const target = path.join(base, 'target');
    execFileSync('cp', ['-a', lower, target]);
    await applyLayer(fs.createReadStream(blob), { root: target, sameOwner: true });
    assert.deepEqual(describeTree(target, { times: true, xattrs: true }), describeTree(upper, { times: true, xattrs: true }));
  } finally {
    rmrf(base);
  }
});

// The tar writer's hard-link table (inode-paths.ts): links within the layer become link entries
// to the first path written; a file whose other links are outside the layer (COPY hard-links
// the context's files) stays a file entry with its bytes.
test('writeLayer: in-layer hard links become link entries; files linked only from outside stay files', async () => {
  const base = tmp();
  try {
    const src = path.join(base, 'src');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    w(path.join(src, 'a/one'), 'one\n');
    fs.linkSync(path.join(src, 'a/one'), path.join(src, 'a/one-again'));
    w(path.join(src, 'b/solo'), 'solo\n');
    fs.linkSync(path.join(src, 'b/solo'), path.join(outside, 'solo'));
    // linked from outside and inside; the first path written is a non-ASCII name (kept as bytes)
    w(path.join(src, 'c/ä-both'), 'both\n');
    fs.linkSync(path.join(src, 'c/ä-both'), path.join(outside, 'both'));
    fs.linkSync(path.join(src, 'c/ä-both'), path.join(src, 'c/ö-both'));
    // many inodes, each linked from outside, and a few pairs inside: the table grows past its first size
    for (let i = 0; i < 3000; i++) {
      w(path.join(src, `many/f${i}`), `f${i}\n`);
      fs.linkSync(path.join(src, `many/f${i}`), path.join(outside, `m${i}`));
      if (i % 1000 === 999) fs.linkSync(path.join(src, `many/f${i}`), path.join(src, `many/g${i}`));
    }
    const out = path.join(base, 'layer.tar');
    await layerOf(compareDirs(null, src), src, 'none', out);
    const list = execFileSync('tar', ['-tvf', out], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .trim()
      .split('\n');
    const links = list.filter((l) => l.includes(' link to ')).map((l) => l.replace(/^.* (\S+ link to \S+)$/, '$1'));
    assert.deepEqual(links.sort(), ['a/one-again link to a/one', 'c/ö-both link to c/ä-both', 'many/g1999 link to many/f1999', 'many/g2999 link to many/f2999', 'many/g999 link to many/f999'].sort());
    const files = list.filter((l) => l.startsWith('-')).length;
    assert.equal(files, 3 + 3000, 'every other file is a file entry');
    // and the bytes come back: extract with GNU tar and compare
    const x = path.join(base, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', out, '-C', x]);
    assert.equal(fs.readFileSync(path.join(x, 'b/solo'), 'utf8'), 'solo\n');
    assert.equal(fs.statSync(path.join(x, 'c/ö-both')).ino, fs.statSync(path.join(x, 'c/ä-both')).ino);
    assert.equal(fs.readFileSync(path.join(x, 'c/ö-both'), 'utf8'), 'both\n');
    assert.equal(fs.readFileSync(path.join(x, 'many/f2500'), 'utf8'), 'f2500\n');
  } finally {
    rmrf(base);
  }
});

// What tar-stream reads of each entry of an uncompressed layer: owner and PAX records.
async function layerHeaders(file: string): Promise<Map<string, { uid: number; gid: number; pax: Record<string, string> }>> {
  const out = new Map<string, { uid: number; gid: number; pax: Record<string, string> }>();
  const ex = extract();
  ex.on('entry', (h, body, next) => {
    out.set(h.name, { uid: h.uid ?? 0, gid: h.gid ?? 0, pax: (h.pax as Record<string, string> | undefined) ?? {} });
    body.resume();
    body.on('end', next);
  });
  const done = new Promise<void>((resolve, reject) => ex.on('finish', resolve).on('error', reject));
  ex.end(fs.readFileSync(file));
  await done;
  return out;
}

test('an owner kept aside in user.img.owner (a namespace that cannot chown to it) is the owner the layer records; a layer\'s own user.img.* xattr stays the layer\'s', AS_ROOT, async () => {
  const base = tmp();
  try {
    // What archive/owner.ts leaves where the namespace does not map 1000:42: root's file, the owner kept.
    const src = path.join(base, 'src');
    w(path.join(src, 'kept'), 'k\n');
    fs.mkdirSync(path.join(src, 'dir'));
    lsetxattr(path.join(src, 'kept'), 'user.img.owner', Buffer.from('1000:42'));
    lsetxattr(path.join(src, 'dir'), 'user.img.owner', Buffer.from('7:8'));
    const out = path.join(base, 'kept.tar');
    await layerOf(compareDirs(null, src), src, 'none', out);
    const kept = await layerHeaders(out);
    assert.deepEqual(kept.get('kept'), { uid: 1000, gid: 42, pax: {} });
    assert.deepEqual(kept.get('dir/'), { uid: 7, gid: 8, pax: {} });

    // A layer that carries user.img.owner itself: applied, it is stored escaped (not read as an
    // owner), and written back it is the layer's xattr again, the owner the header's.
    const root = path.join(base, 'root');
    fs.mkdirSync(root);
    const hostile = await tarOf([{ name: 'x', body: 'x\n', uid: 3, gid: 4, pax: { 'SCHILY.xattr.user.img.owner': '5:5' } }]);
    await applyLayer(stream(hostile), { root, sameOwner: true });
    assert.equal(lgetxattr(path.join(root, 'x'), 'user.img.owner'), null);
    assert.equal(lgetxattr(path.join(root, 'x'), 'user.img.overlay.owner')?.toString(), '5:5');
    const back = path.join(base, 'back.tar');
    await layerOf(compareDirs(null, root), root, 'none', back);
    assert.deepEqual((await layerHeaders(back)).get('x'), { uid: 3, gid: 4, pax: { 'SCHILY.xattr.user.img.owner': '5:5' } });
  } finally {
    rmrf(base);
  }
});
