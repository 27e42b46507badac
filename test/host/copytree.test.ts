// copyTree reproduces a tree exactly: contents, modes, times (ns), hard links,
// symlinks (never followed), fifos, sockets, xattrs and, as root, owners and
// device nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon, makedev } from '../../lib/host';

const addon = loadAddon();
const isRoot = process.getuid?.() === 0;
const { S_IFIFO, S_IFSOCK, S_IFCHR } = fs.constants;

function build(root: string) {
  const p = (...x: string[]) => path.join(root, ...x);
  fs.mkdirSync(p('a/b/c'), { recursive: true });
  fs.mkdirSync(p('empty'));
  fs.writeFileSync(p('a/file'), crypto.randomBytes(70_000));
  fs.writeFileSync(p('a/b/c/deep'), 'deep');
  fs.writeFileSync(p('zero'), '');
  fs.writeFileSync(p('suid'), '#!/bin/sh\n');
  fs.chmodSync(p('suid'), 0o4755);
  fs.writeFileSync(p('ro'), 'read only');
  fs.chmodSync(p('ro'), 0o400);
  fs.writeFileSync(p('gw'), 'g');
  fs.chmodSync(p('gw'), 0o666); // bits a usual umask (022) would strip
  fs.linkSync(p('a/file'), p('hard1'));
  fs.linkSync(p('a/file'), p('a/b/hard2'));
  fs.symlinkSync('../file', p('a/b/rel-link'));
  fs.symlinkSync('/etc/passwd', p('abs-link')); // must stay a link, not a copy of /etc/passwd
  fs.symlinkSync('nowhere', p('dangling'));
  fs.symlinkSync('a', p('dirlink'));
  addon.mknod(p('fifo'), S_IFIFO | 0o640, 0);
  addon.mknod(p('sock'), S_IFSOCK | 0o755, 0);
  addon.lsetxattr(p('a/file'), 'user.note', Buffer.from('hello'));
  addon.lsetxattr(p('a'), 'user.overlay.opaque', Buffer.from('y'));
  addon.lsetxattr(p('zero'), 'user.big', Buffer.alloc(2000, 1));
  if (isRoot) {
    fs.chownSync(p('a/file'), 1234, 5678);
    fs.lchownSync(p('abs-link'), 42, 43);
    fs.chownSync(p('a/b'), 1000, 1000);
    addon.mknod(p('null'), S_IFCHR | 0o666, makedev(1, 3));
    fs.chownSync(p('null'), 7, 8);
    addon.lsetxattr(p('empty'), 'trusted.overlay.opaque', Buffer.from('y'));
  }
  fs.chmodSync(p('a/b/c'), 0o555); // not writable: metadata is applied after the children
  fs.chmodSync(p('empty'), 0o1777);
  // Times last, deepest first, with sub-second parts.
  const t = (s: number) => new Date(s * 1000);
  for (const [rel, sec] of [['a/b/c/deep', 1e9 + 0.123], ['a/file', 1.1e9 + 0.5], ['zero', 1.2e9], ['a/b/c', 1.3e9 + 0.25], ['a/b', 1.31e9], ['a', 1.32e9], ['empty', 1.33e9], ['fifo', 1.34e9]] as const)
    fs.utimesSync(p(rel), t(sec - 1000), t(sec));
  fs.lutimesSync(p('abs-link'), t(1.4e9), t(1.4e9 + 0.75));
}

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: bigint;
  mtimeNs: bigint;
  atimeNs?: bigint;
  link?: string;
  rdev?: number;
  inoGroup?: string;
  xattrs: Record<string, string>;
}

// Metadata only (lstat, no reads, so atimes stay put), keyed by relative path.
function listing(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const inoNames = new Map<bigint, string>();
  const walk = (rel: string) => {
    const full = path.join(root, rel);
    const st = fs.lstatSync(full, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'sock' : st.isCharacterDevice() ? 'chr' : 'other';
    const xattrs: Record<string, string> = {};
    for (const n of addon.llistxattr(full).sort()) if (!n.startsWith('security.')) xattrs[n] = addon.lgetxattr(full, n)!.toString('hex');
    const e: Entry = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs, xattrs };
    if (type === 'file') {
      e.size = st.size;
      if (!inoNames.has(st.ino)) inoNames.set(st.ino, rel);
      e.inoGroup = st.nlink > 1n ? inoNames.get(st.ino) : undefined;
    }
    if (type !== 'link' && type !== 'dir') e.atimeNs = st.atimeNs;
    if (type === 'link') e.link = fs.readlinkSync(full);
    if (type === 'chr') e.rdev = Number(st.rdev);
    out.set(rel || '.', e);
    if (type === 'dir') for (const n of fs.readdirSync(full).sort()) walk(path.join(rel, n));
  };
  walk('');
  return out;
}

test('copyTree preserves contents, modes, times, links, special files and xattrs', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'img-copytree-'));
  const src = path.join(base, 'src');
  const dst = path.join(base, 'dst');
  try {
    build(src);
    const before = listing(src);
    const res = await addon.copyTree(src, dst, { threads: 3 });
    const after = listing(dst);
    // Hard link groups are named by the first path seen; src and dst walk alike.
    assert.deepEqual([...after.keys()], [...before.keys()]);
    for (const [rel, e] of before) {
      const d = after.get(rel)!;
      const { atimeNs: aSrc, ...restSrc } = e;
      const { atimeNs: aDst, ...restDst } = d;
      assert.deepEqual(restDst, restSrc, rel);
      if (rel === 'a/file' || rel === 'zero') assert.equal(aDst, aSrc, `${rel} atime`);
    }
    const files = [...before.values()].filter((e) => e.type !== 'dir').length;
    assert.equal(res.files, files);
    assert.equal(res.bytes, 70_000 + 4 + 0 + 10 + 9 + 1); // each inode's bytes once
    assert.deepEqual(fs.readFileSync(path.join(dst, 'a/b/hard2')), fs.readFileSync(path.join(src, 'a/file')));
    assert.equal(fs.statSync(path.join(dst, 'hard1')).ino, fs.statSync(path.join(dst, 'a/b/hard2')).ino);
    assert.equal(fs.readFileSync(path.join(dst, 'a/b/c/deep'), 'utf8'), 'deep');
    if (isRoot) {
      assert.equal(after.get('a/file')!.uid, 1234);
      assert.equal(after.get('abs-link')!.uid, 42);
      assert.equal(after.get('null')!.rdev, makedev(1, 3));
      assert.equal(after.get('empty')!.xattrs['trusted.overlay.opaque'], Buffer.from('y').toString('hex'));
    }
  } finally {
    fs.chmodSync(path.join(src, 'a/b/c'), 0o755);
    if (fs.existsSync(dst)) fs.chmodSync(path.join(dst, 'a/b/c'), 0o755);
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('copyTree refuses an existing destination and a non-directory source', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'img-copytree-'));
  try {
    fs.mkdirSync(path.join(base, 'src'));
    fs.mkdirSync(path.join(base, 'dst'));
    fs.writeFileSync(path.join(base, 'f'), '');
    await assert.rejects(addon.copyTree(path.join(base, 'src'), path.join(base, 'dst')), { code: 'EEXIST' });
    await assert.rejects(addon.copyTree(path.join(base, 'f'), path.join(base, 'x')), { code: 'ENOTDIR' });
    await assert.rejects(addon.copyTree(path.join(base, 'none'), path.join(base, 'x')), { code: 'ENOENT' });
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('copyTree copies a wide tree with many small files on the default pool', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'img-copytree-'));
  try {
    const src = path.join(base, 'src');
    for (let d = 0; d < 20; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `${d}/${f}`);
    }
    const res = await addon.copyTree(src, path.join(base, 'dst'));
    assert.equal(res.files, 1000);
    assert.equal(fs.readFileSync(path.join(base, 'dst', 'd19', 'f49'), 'utf8'), '19/49');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('copyTree works as root of a user namespace (unprivileged test user)', async () => {
  const { entryArgv, runUnprivileged, userDir, removeDir } = await import('./fixtures/unprivileged');
  const dir = userDir('img-copytree-ns-');
  try {
    const r = await runUnprivileged(entryArgv('copytree', dir), dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.uid, 0);
    assert.deepEqual(out.copy, { files: 3, f: [1000, 1000], home: [1000, 1000], l: [33, 33], whChar: true, xattr: 'v' });
  } finally {
    await removeDir(dir);
  }
});
