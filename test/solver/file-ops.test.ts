// COPY/ADD/WORKDIR file operations on real directories (as the BuildKit
// Dockerfile frontend means them), including hostile destination symlinks.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyFileActions, ownerFor, parseChmod, unpackArchive, type FileOpOptions } from '../../lib/solver/ops/file';
import type { FileAction } from '../../lib/graph/types';
import { lgetxattr, lsetxattr } from '../../lib/archive/sys';

type Copy = Extract<FileAction, { op: 'copy' }>;

function copyAction(srcPaths: string[], dest: string, extra: Partial<Copy> = {}): Copy {
  return {
    op: 'copy', src: 0, srcPaths, dest, followSymlinks: true, dirCopyContents: true, createDestPath: true,
    allowWildcard: true, allowEmptyWildcard: false, attemptUnpack: false, ...extra,
  };
}

// Every directory a test made, removed when the file's tests are done.
const made: string[] = [];
after(() => Promise.all(made.map((dir) => fs.rm(dir, { recursive: true, force: true }))));
async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

async function setup(): Promise<{ ctx: string; dest: string; run: (actions: FileAction[], o?: Partial<FileOpOptions>) => Promise<void> }> {
  const base = await tempDir('img-fileops-');
  const ctx = path.join(base, 'ctx');
  const dest = path.join(base, 'rootfs');
  await fs.mkdir(path.join(ctx, 'src', 'sub'), { recursive: true });
  await fs.writeFile(path.join(ctx, 'a.txt'), 'A');
  await fs.writeFile(path.join(ctx, 'b.txt'), 'B');
  await fs.writeFile(path.join(ctx, 'src', 'main.c'), 'int main(){}');
  await fs.writeFile(path.join(ctx, 'src', 'sub', 'x.md'), 'x');
  await fs.writeFile(path.join(ctx, 'src', 'sub', 'y.txt'), 'y');
  await fs.chmod(path.join(ctx, 'src', 'main.c'), 0o640);
  await fs.mkdir(path.join(dest, 'etc'), { recursive: true });
  const run = (actions: FileAction[], o: Partial<FileOpOptions> = {}) =>
    applyFileActions({
      destRoot: dest,
      actions,
      inputRoot: () => ctx,
      resolveOwner: async (c) => ({ uid: Number(c.user ?? 0), gid: Number(c.group ?? c.user ?? 0) }),
      ...o,
    });
  return { ctx, dest, run };
}

async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    for (const e of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) await walk(path.join(dir, e.name), r);
    }
  }
  await walk(root, '');
  return out;
}

test('COPY dir copies its contents, not the directory itself', async () => {
  const { dest, run } = await setup();
  await run([copyAction(['src'], '/app')]);
  assert.deepEqual(await tree(path.join(dest, 'app')), ['main.c', 'sub/', 'sub/x.md', 'sub/y.txt']);
  assert.equal((await fs.stat(path.join(dest, 'app', 'main.c'))).mode & 0o777, 0o640);
});

test('COPY dir / copies its contents into the root', async () => {
  const { dest, run } = await setup();
  await run([copyAction(['src'], '/')]);
  assert.deepEqual((await tree(dest)).filter((p) => !p.startsWith('etc')), ['main.c', 'sub/', 'sub/x.md', 'sub/y.txt']);
});

test('COPY file to a path without slash renames; with slash goes inside', async () => {
  const { dest, run } = await setup();
  await run([copyAction(['a.txt'], '/x/renamed'), copyAction(['b.txt'], '/y/')]);
  assert.equal(await fs.readFile(path.join(dest, 'x', 'renamed'), 'utf8'), 'A');
  assert.equal(await fs.readFile(path.join(dest, 'y', 'b.txt'), 'utf8'), 'B');
});

test('COPY wildcard matches per component and lands in the destination dir', async () => {
  const { dest, run } = await setup();
  await run([copyAction(['*.txt'], '/w/')]);
  assert.deepEqual(await tree(path.join(dest, 'w')), ['a.txt', 'b.txt']);
  await assert.rejects(run([copyAction(['*.nope'], '/w/')]), /not found/);
  await run([copyAction(['*.nope'], '/w/', { allowEmptyWildcard: true })]);
});

test('COPY wildcard with one match onto a path without "/" makes that file; a created directory destination is 0755', async () => {
  const { ctx, dest, run } = await setup();
  await run([copyAction(['a.*'], '/single.txt')]);
  assert.equal(await fs.readFile(path.join(dest, 'single.txt'), 'utf8'), 'A');
  await fs.chmod(path.join(ctx, 'src'), 0o700);
  await run([copyAction(['src'], '/made'), copyAction(['src'], '/made-750', { chmod: '750' })]);
  assert.deepEqual([(await fs.stat(path.join(dest, 'made'))).mode & 0o7777, (await fs.stat(path.join(dest, 'made-750'))).mode & 0o7777], [0o755, 0o750], "the source directory's own mode does not reach it; --chmod does");
  const old = new Date('2001-02-03T04:05:06Z');
  await fs.utimes(path.join(ctx, 'src'), old, old);
  await run([copyAction(['src'], '/made-dated')]);
  assert.equal((await fs.stat(path.join(dest, 'made-dated'))).mtime.toISOString(), old.toISOString(), "it keeps the source directory's times");
});

test('COPY --chmod: the directories the copy creates take the mode, existing ones keep theirs', async () => {
  const { dest, run } = await setup();
  const mode = async (p: string) => ((await fs.stat(path.join(dest, p))).mode & 0o7777).toString(8);
  // COPY --chmod=777 a.txt /parent/a.txt, then --chmod=770 a.txt /parent/sub/a.txt
  await run([copyAction(['a.txt'], '/parent/a.txt', { chmod: '777' })]);
  await run([copyAction(['a.txt'], '/parent/sub/a.txt', { chmod: '770' })]);
  assert.deepEqual([await mode('parent'), await mode('parent/sub'), await mode('parent/sub/a.txt')], ['777', '770', '770']);
  // A directory copied to a new "dir/" destination: the destination and its new parents too.
  await run([copyAction(['src'], '/m/dir/', { chmod: '750' })]);
  assert.deepEqual([await mode('m'), await mode('m/dir'), await mode('m/dir/sub'), await mode('m/dir/main.c')], ['750', '750', '750', '750']);
  // Symbolic: applied to a new directory's 0755.
  await run([copyAction(['a.txt'], '/s/t/a.txt', { chmod: 'g+w' })]);
  assert.deepEqual([await mode('s'), await mode('s/t')], ['775', '775']);
  // Without --chmod: 0755; an existing directory is not changed.
  await fs.mkdir(path.join(dest, 'keep'), { mode: 0o700 });
  await fs.chmod(path.join(dest, 'keep'), 0o700);
  await run([copyAction(['a.txt'], '/plain/a.txt'), copyAction(['a.txt'], '/keep/a.txt', { chmod: '777' })]);
  assert.deepEqual([await mode('plain'), await mode('keep')], ['755', '700']);
});

test('COPY to "file/" or under a file: Go\'s mkdir error, as fsutil\'s MkdirAll', async () => {
  const { dest, run } = await setup();
  await fs.writeFile(path.join(dest, 'etc', 'passwd'), 'root');
  await assert.rejects(run([copyAction(['a.txt'], '/etc/passwd/')]), /mkdir \/etc\/passwd: not a directory/);
  await assert.rejects(run([copyAction(['a.txt'], '/etc/passwd/x/y')]), /mkdir \/etc\/passwd: not a directory/);
  assert.equal(await fs.readFile(path.join(dest, 'etc', 'passwd'), 'utf8'), 'root');
});

test('COPY keeps xattrs (file capabilities, user.*) of what it copies, as BuildKit', async () => {
  const { ctx, dest, run } = await setup();
  lsetxattr(path.join(ctx, 'src', 'main.c'), 'user.origin', Buffer.from('ctx'));
  lsetxattr(path.join(ctx, 'src', 'sub'), 'user.dir', Buffer.from('d'));
  await run([copyAction(['src'], '/x/')]);
  assert.deepEqual([lgetxattr(path.join(dest, 'x', 'main.c'), 'user.origin')?.toString(), lgetxattr(path.join(dest, 'x', 'sub'), 'user.dir')?.toString()], ['ctx', 'd']);
});

test('COPY of a missing source names it', async () => {
  const { run } = await setup();
  await assert.rejects(run([copyAction(['missing.txt'], '/')]), /"missing\.txt": not found/);
});

test('COPY --exclude skips matching paths', async () => {
  const { dest, run } = await setup();
  await run([copyAction(['.'], '/e/', { excludePatterns: ['**/*.txt'] })]);
  const t = await tree(path.join(dest, 'e'));
  assert.ok(!t.some((p) => p.endsWith('.txt')), t.join(','));
  assert.ok(t.includes('src/sub/x.md'));
});

test('COPY --exclude matches below each copied source, never the source itself (BuildKit\'s testExcludedFilesOnCopy)', async () => {
  const { ctx, dest, run } = await setup();
  const files: Record<string, string> = { 'dir1/f101.png': '2', 'dir1/f102.txt': '3', 'dir2/f201.pdf': '6', 'dir2/f203.png': '8', 'dir3/f301.mp3': '9', 'dir3/f302.mpeg': '10' };
  for (const [f, body] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(ctx, f)), { recursive: true });
    await fs.writeFile(path.join(ctx, f), body);
  }
  const exclude = (excludePatterns: string[]) => ({ excludePatterns, allowEmptyWildcard: true });
  await run([copyAction(['dir*'], '/4/', exclude(['*.mp3', '*.png', '*.pdf', '*.txt']))]);
  assert.deepEqual(await tree(path.join(dest, '4')), ['f302.mpeg']);
  await run([copyAction(['dir*'], '/6', exclude(['*']))]);
  assert.deepEqual(await tree(path.join(dest, '6')), [], 'every match copied, all of its contents excluded: an empty directory');
  // Relative to the copied directory, not to the context root.
  await run([copyAction(['dir1'], '/r/', exclude(['dir1/*.png']))]);
  assert.deepEqual(await tree(path.join(dest, 'r')), ['f101.png', 'f102.txt']);
  await run([copyAction(['.'], '/1/', exclude(['*/*.png']))]);
  assert.deepEqual((await tree(path.join(dest, '1'))).filter((p) => p.startsWith('dir')), ['dir1/', 'dir1/f102.txt', 'dir2/', 'dir2/f201.pdf', 'dir3/', 'dir3/f301.mp3', 'dir3/f302.mpeg']);
});

// --parents as the frontend sends it (BuildKit's LLB): the directory before the /./ pivot
// as source ("/" without one), the rest as include pattern.
const parents = (dir: string, pattern: string, dest: string, extra: Partial<Copy> = {}) => copyAction([dir], dest, { parents: true, includePatterns: [pattern], ...extra });

test('COPY --parents keeps the source path, pivoted at /./', async () => {
  const { dest, run } = await setup();
  await run([parents('/', 'src/sub/x.md', '/p/'), parents('/src', 'sub/y.txt', '/q/')]);
  assert.equal(await fs.readFile(path.join(dest, 'p', 'src', 'sub', 'x.md'), 'utf8'), 'x');
  assert.equal(await fs.readFile(path.join(dest, 'q', 'sub', 'y.txt'), 'utf8'), 'y');
  assert.deepEqual(await tree(path.join(dest, 'q')), ['sub/', 'sub/y.txt'], 'only what the pattern names');
});

test('COPY --parents: a wildcard before the pivot copies each match\'s tree into one destination; ** spans directories (BuildKit\'s testCopyRelativeParents)', async () => {
  const { ctx, dest, run } = await setup();
  for (const d of ['a/b/c/d/e', 'a/b2/c/d/e', 'a/b/c2/d/e', 'a/b/c2/d/e2']) await fs.mkdir(path.join(ctx, d), { recursive: true });
  for (const f of ['a/b/c/d/foo', 'a/b/c/d/e/bay', 'a/b2/c/d/e/bar', 'a/b/c2/d/e/baz', 'a/b/c2/d/e2/baz']) await fs.writeFile(path.join(ctx, f), f);
  await fs.chmod(path.join(ctx, 'a/b/c'), 0o750);
  // COPY --parents a/b*/./c/**/e /dw/   and   a/b/c*/./d/**/baz a/b*/./c/**/bar /di/
  await run([parents('a/b*', 'c/**/e', '/dw/')]);
  await run([parents('a/b/c*', 'd/**/baz', '/di/'), parents('a/b*', 'c/**/bar', '/di/')]);
  await run([parents('a', '*/c', '/wc/')]);
  assert.deepEqual(await tree(path.join(dest, 'dw')), ['c/', 'c/d/', 'c/d/e/', 'c/d/e/bar', 'c/d/e/bay']);
  assert.deepEqual(await tree(path.join(dest, 'di')), ['c/', 'c/d/', 'c/d/e/', 'c/d/e/bar', 'd/', 'd/e/', 'd/e/baz', 'd/e2/', 'd/e2/baz']);
  assert.deepEqual(await tree(path.join(dest, 'wc')), ['b/', 'b/c/', 'b/c/d/', 'b/c/d/e/', 'b/c/d/e/bay', 'b/c/d/foo', 'b2/', 'b2/c/', 'b2/c/d/', 'b2/c/d/e/', 'b2/c/d/e/bar']);
  // The directories on the way are made like their sources.
  assert.equal((await fs.stat(path.join(dest, 'dw', 'c'))).mode & 0o777, 0o750);
  await assert.rejects(run([parents('/', 'nope/x.txt', '/n/')]), /"nope\/x\.txt": not found/);
});

test('COPY --chown and --chmod apply to every copied entry', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('chown to another uid needs root or a user namespace');
  const { dest, run } = await setup();
  await run([copyAction(['src'], '/o', { chown: { user: '1234', group: '55' }, chmod: '0750' })]);
  for (const p of ['o/main.c', 'o/sub', 'o/sub/x.md']) {
    const st = await fs.lstat(path.join(dest, p));
    assert.equal(st.uid, 1234, p);
    assert.equal(st.gid, 55, p);
    assert.equal(st.mode & 0o7777, 0o750, p);
  }
});

test('--chown owners as BuildKit\'s readUser finds them: unknown names are no error (0:0, or the user\'s gid), numbers stand for themselves', async () => {
  const root = await tempDir('img-chown-');
  await fs.mkdir(path.join(root, 'etc'));
  await fs.writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1234:1235::/home/app:/bin/sh\n');
  await fs.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nstaff:x:50:app\n');
  const notes: string[] = [];
  const own = (user?: string, group?: string) => ownerFor(root, { ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) }, (m) => notes.push(m));
  assert.deepEqual(await own('app'), { uid: 1234, gid: 1235 }, "a name: its uid and primary gid");
  assert.deepEqual(await own('1234'), { uid: 1234, gid: 1234 }, 'a number: uid and gid, whatever passwd says');
  assert.deepEqual(await own('app', 'staff'), { uid: 1234, gid: 50 });
  assert.deepEqual(await own(undefined, 'staff'), { uid: 0, gid: 50 });
  assert.deepEqual(await own('app', '0'), { uid: 1234, gid: 0 });
  assert.deepEqual(notes, []);
  assert.deepEqual(await own('nosuch'), { uid: 0, gid: 0 }, 'an unknown user: 0:0');
  assert.deepEqual(await own('app', 'nogroup'), { uid: 1234, gid: 1235 }, "an unknown group: the user's gid");
  assert.equal(notes.length, 2, 'each is told');
  await fs.rm(path.join(root, 'etc'), { recursive: true });
  assert.deepEqual(await own('app', 'staff'), { uid: 0, gid: 0 }, 'no /etc/passwd or /etc/group: as unknown names');
});

test('symbolic chmod follows chmod(1)', () => {
  assert.equal(parseChmod('u+x')(0o644, false), 0o744);
  assert.equal(parseChmod('go-w,a+X')(0o666, false), 0o644);
  assert.equal(parseChmod('a+X')(0o644, true), 0o755);
  assert.equal(parseChmod('u=rw,go=')(0o777, false), 0o600);
  assert.throws(() => parseChmod('u+q'), /invalid --chmod/);
});

test('a destination symlink pointing outside the root cannot redirect a write', async () => {
  const { dest, run } = await setup();
  const outside = await tempDir('img-outside-');
  await fs.symlink(outside, path.join(dest, 'evil'));
  await fs.symlink('/', path.join(dest, 'evilroot'));
  await run([copyAction(['a.txt'], '/evil/'), copyAction(['b.txt'], '/evilroot/etc/')]);
  assert.deepEqual(await fs.readdir(outside), []);
  // The absolute link is resolved inside the root: /evil → <root>/<outside path>.
  assert.equal(await fs.readFile(path.join(dest, outside, 'a.txt'), 'utf8'), 'A');
  assert.equal(await fs.readFile(path.join(dest, 'etc', 'b.txt'), 'utf8'), 'B');
});

test('hard links inside a copied tree stay hard links; across wildcard matches they do not', async () => {
  const { ctx, dest, run } = await setup();
  await fs.link(path.join(ctx, 'src', 'main.c'), path.join(ctx, 'src', 'hard.c'));
  await run([copyAction(['src'], '/h')]);
  const a = await fs.stat(path.join(dest, 'h', 'main.c'));
  const b = await fs.stat(path.join(dest, 'h', 'hard.c'));
  assert.equal(a.ino, b.ino);
  // Each match of a wildcard is copied on its own (BuildKit): links between matches are not kept.
  await run([copyAction(['src/*.c'], '/w/')]);
  const [wa, wb] = await Promise.all(['main.c', 'hard.c'].map((n) => fs.stat(path.join(dest, 'w', n))));
  assert.notEqual(wa.ino, wb.ino);
});

test('mkdir, mkfile, symlink and rm', async () => {
  const { dest, run } = await setup();
  await run([
    { op: 'mkdir', path: '/work/dir', mode: 0o755, makeParents: true },
    { op: 'mkfile', path: '/work/dir/f', mode: 0o600, data: 'hello\n' },
    { op: 'symlink', oldpath: '/work/dir/f', newpath: '/work/link' },
  ]);
  assert.equal(await fs.readFile(path.join(dest, 'work/dir/f'), 'utf8'), 'hello\n');
  assert.equal((await fs.stat(path.join(dest, 'work/dir/f'))).mode & 0o777, 0o600);
  assert.equal(await fs.readlink(path.join(dest, 'work/link')), '/work/dir/f');
  await run([{ op: 'rm', path: '/work/dir/*', allowNotFound: false, allowWildcard: true }]);
  assert.deepEqual(await fs.readdir(path.join(dest, 'work/dir')), []);
  await assert.rejects(run([{ op: 'rm', path: '/nope', allowNotFound: false, allowWildcard: false }]), /no such file/);
  await run([{ op: 'rm', path: '/nope', allowNotFound: true, allowWildcard: false }]);
});

test('COPY wildcards are Go filepath.Match globs (util/glob.ts): [!x] is literal, [^x] negates, \ escapes', async () => {
  const { ctx, dest, run } = await setup();
  for (const f of ['!.txt', 'c.txt', 'x*y.md', 'xzy.md']) await fs.writeFile(path.join(ctx, f), f);
  await run([
    copyAction(['[!a].txt'], '/bang/'), // members '!' and 'a', as BuildKit (a shell would negate)
    copyAction(['[^a].txt'], '/caret/'),
    copyAction(['[a-b].txt'], '/range/'),
    copyAction(['x\\**.md'], '/esc/'), // \* is a literal star
    copyAction(['s*/s\\ub/?.md'], '/deep/'), // past the first wildcard every component is a pattern
  ]);
  assert.deepEqual(await tree(path.join(dest, 'bang')), ['!.txt', 'a.txt']);
  assert.deepEqual(await tree(path.join(dest, 'caret')), ['!.txt', 'b.txt', 'c.txt']);
  assert.deepEqual(await tree(path.join(dest, 'range')), ['a.txt', 'b.txt']);
  assert.deepEqual(await tree(path.join(dest, 'esc')), ['x*y.md']);
  assert.deepEqual(await tree(path.join(dest, 'deep')), ['x.md']);
  // a malformed pattern is an error naming it, not a silent literal
  await assert.rejects(run([copyAction(['[a.txt'], '/bad/')]), /syntax error in pattern "\[a\.txt": "\[" without a closing "\]"/);
  // --exclude with ** skips the path and everything below a matched directory
  await run([copyAction(['src'], '/ex/', { excludePatterns: ['**/sub'] })]);
  assert.deepEqual(await tree(path.join(dest, 'ex')), ['main.c']);
});

test('COPY does not replace a file or symlink with a directory, nor a directory with a file (BuildKit stops there)', async () => {
  const { ctx, dest, run } = await setup();
  await fs.mkdir(path.join(dest, 'usr', 'lib'), { recursive: true });
  await fs.symlink('usr/lib', path.join(dest, 'lib'));
  await fs.mkdir(path.join(ctx, 'rootfs', 'lib'), { recursive: true });
  await fs.writeFile(path.join(ctx, 'rootfs', 'lib', 'libx.so'), 'x');
  await fs.mkdir(path.join(dest, 'tree', 'sub', 'x.md'), { recursive: true });
  await fs.mkdir(path.join(dest, 'tree2', 'sub'), { recursive: true });
  await fs.mkdir(path.join(dest, 'top'), { recursive: true });
  await fs.writeFile(path.join(dest, 'top', 'sub'), 'a file');
  await assert.rejects(run([copyAction(['src'], '/top/')]), /cannot copy to non-directory: \/top\/sub/);
  await assert.rejects(run([copyAction(['src'], '/tree/')]), /cannot replace to directory \/tree\/sub\/x\.md with file/);
  await run([copyAction(['src'], '/tree2/')]);
  assert.deepEqual(await tree(path.join(dest, 'tree2')), ['main.c', 'sub/', 'sub/x.md', 'sub/y.txt'], 'an existing directory is merged into');
  await assert.rejects(run([copyAction(['rootfs'], '/')]), /cannot copy to non-directory: \/lib/);
  assert.equal(await fs.readlink(path.join(dest, 'lib')), 'usr/lib', 'a merged-/usr link is not turned into a directory');
});

test('ADD of a local file: a tar (also compressed) is extracted into the destination; anything else, compressed or not, is copied as the file it names', async () => {
  const { ctx, dest, run } = await setup();
  const { execFileSync } = await import('node:child_process');
  execFileSync('tar', ['-czf', path.join(ctx, 't.tgz'), '-C', path.join(ctx, 'src'), 'sub']);
  execFileSync('gzip', ['-k', path.join(ctx, 'a.txt')]);
  await run([
    copyAction(['t.tgz'], '/unpacked', { attemptUnpack: true }),
    copyAction(['a.txt.gz'], '/plain.gz', { attemptUnpack: true }),
    copyAction(['b.txt'], '/b-file', { attemptUnpack: true }),
  ], { unpackArchive });
  assert.deepEqual(await tree(path.join(dest, 'unpacked')), ['sub/', 'sub/x.md', 'sub/y.txt']);
  assert.ok((await fs.lstat(path.join(dest, 'plain.gz'))).isFile(), 'a gzip that is not a tar stays a file');
  assert.equal(await fs.readFile(path.join(dest, 'b-file'), 'utf8'), 'B');
});
