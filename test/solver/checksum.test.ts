// The context checksum walks in order and streams (solver/checksum.ts): checked
// here against an independent computation — every path collected first, sorted
// by components, filtered, hashed — and its per-directory stat cache on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChecksumCache, includeMatcher, scanContext, SELECT_ALL, type Selector } from '../../lib/solver/checksum';
import { HostError, NotFoundError, UnsupportedError, UsageError } from '../../lib/util/errors';
import { REPO } from '../helpers/cli';
import { runAsUser, skipUnlessRootless, tempDir, TSX } from '../helpers/rootless';

// A tree with what orders and selects differently: names that sort apart as paths
// and as components ('a-b' before 'a/x' as strings, after 'a' as names), upper case
// before lower, multibyte and control characters, a newline, spaces; symlinks to a
// file, a directory, nowhere; a fifo (skipped); an empty dir; special mode bits.
function makeTree(root: string): void {
  const file = (rel: string, data: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
    fs.chmodSync(path.join(root, rel), mode);
  };
  file('a/x', 'ax');
  file('a/y/z', 'deep');
  file('a-b', 'dash');
  file('a.b', 'dot');
  file('B', 'upper');
  file('é/ü ä', 'unicode');
  file('odd/new\nline', 'nl');
  file('odd/tab\tand space ', 'tab');
  file('odd/\u0001ctl', 'ctl');
  file('odd/\uff01bang', 'sorts after the emoji as UTF-16, before it as UTF-8 bytes');
  file('odd/😀', 'emoji');
  file('bin/tool', '#!/bin/sh\n', 0o4755);
  file('big.bin', Buffer.alloc(600 * 1024, 7)); // past the small-file read
  file('skip/drop.txt', 'dropped');
  file('skip/keep.txt', 'kept');
  file('skip/deeper/drop2.txt', 'dropped');
  file('gone/inner/f', 'excluded subtree');
  for (let i = 0; i < 300; i++) file(`many/f${String(i).padStart(3, '0')}`, `n${i}`); // more than a stat batch and the window
  fs.mkdirSync(path.join(root, 'empty'));
  fs.mkdirSync(path.join(root, 'sticky'));
  fs.chmodSync(path.join(root, 'sticky'), 0o1777);
  fs.symlinkSync('a-b', path.join(root, 'link-file'));
  fs.symlinkSync('a', path.join(root, 'link-dir'));
  fs.symlinkSync('/nowhere/at/all', path.join(root, 'link-dangling'));
  execFileSync('mkfifo', [path.join(root, 'odd/fifo')]);
}

// .dockerignore-like verdicts: skip/ is excluded but skip/keep.txt re-included; gone/ excluded whole.
const ignore: Selector = {
  excluded: (rel) => rel === 'gone' || rel.startsWith('gone/') || ((rel === 'skip' || rel.startsWith('skip/')) && rel !== 'skip/keep.txt'),
  mayReinclude: (rel) => rel === 'skip',
};

// The independent computation: all paths first, sorted by components, then selected.
function expected(root: string, sel: Selector): { digest: string; rels: string[] } {
  type E = { rel: string; parts: string[]; st: fs.Stats };
  const all: E[] = [];
  const collect = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      all.push({ rel: r, parts: r.split('/'), st });
      if (st.isDirectory()) collect(r);
    }
  };
  collect('');
  const cmp = (a: E, b: E) => {
    for (let i = 0; i < Math.min(a.parts.length, b.parts.length); i++) if (a.parts[i] !== b.parts[i]) return a.parts[i] < b.parts[i] ? -1 : 1;
    return a.parts.length - b.parts.length;
  };
  all.sort(cmp);
  const verdict = (e: E) => {
    const isDir = e.st.isDirectory();
    const inc = sel.included ? sel.included(e.rel, isDir) : 'yes';
    return { excluded: sel.excluded(e.rel, isDir), inc: inc === 'descend' && !isDir ? 'no' : inc };
  };
  // Reachable: no ancestor was skipped (excluded without re-includes, or not on the way to an include).
  const reachable = (e: E) => {
    for (let i = 1; i < e.parts.length; i++) {
      const anc = all.find((x) => x.rel === e.parts.slice(0, i).join('/'))!;
      const v = verdict(anc);
      if ((v.excluded && !sel.mayReinclude(anc.rel)) || v.inc === 'no') return false;
    }
    return true;
  };
  const leaves = all.filter((e) => !e.st.isDirectory() && (e.st.isFile() || e.st.isSymbolicLink()) && reachable(e) && !verdict(e).excluded && verdict(e).inc === 'yes');
  const dirs = all.filter((e) => {
    if (!e.st.isDirectory() || !reachable(e)) return false;
    const v = verdict(e);
    if (v.excluded && !sel.mayReinclude(e.rel)) return false;
    if (v.inc === 'no') return false;
    if (!v.excluded && v.inc === 'yes') return true;
    return leaves.some((l) => l.rel.startsWith(`${e.rel}/`)); // only on the way to something selected
  });
  const chosen = new Set([...leaves, ...dirs]);
  const h = createHash('sha256');
  const rels: string[] = [];
  for (const e of all) {
    if (!chosen.has(e)) continue;
    const type = e.st.isDirectory() ? 'dir' : e.st.isSymbolicLink() ? 'symlink' : 'file';
    const content = type === 'dir' ? '' : type === 'symlink' ? fs.readlinkSync(path.join(root, e.rel)) : createHash('sha256').update(fs.readFileSync(path.join(root, e.rel))).digest('hex');
    h.update(`${e.rel}\0${type}\0${(e.st.mode & 0o7777).toString(8)}\0${content}\n`);
    rels.push(e.rel);
  }
  return { digest: `sha256:${h.digest('hex')}`, rels };
}

async function tempDirs(t: { after(fn: () => Promise<void>): void }): Promise<{ state: string; ctx: string }> {
  const state = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-sum-state-'));
  const ctx = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-sum-ctx-'));
  t.after(async () => {
    await fsp.rm(state, { recursive: true, force: true });
    await fsp.rm(ctx, { recursive: true, force: true });
  });
  return { state, ctx };
}

test('the streaming context checksum equals an independent computation (order, odd names, links, exclusions, includes)', async (t) => {
  const { state, ctx } = await tempDirs(t);
  makeTree(ctx);
  const selections: [string, Selector][] = [
    ['everything', SELECT_ALL],
    ['.dockerignore with a re-include', ignore],
    ['COPY sources', { ...ignore, included: includeMatcher(['a', 'odd/*', 'skip/*.txt', 'many/f1*', 'link-dir']) }],
  ];
  for (const [what, sel] of selections) {
    const want = expected(ctx, sel);
    // The list in memory, and moved to a file after 16 entries.
    for (const [cached, inMemory] of [[false, undefined], [true, 16], [true, undefined], [false, 16]] as const) {
      const scan = await scanContext(ctx, sel, cached ? await ChecksumCache.open(state, ctx) : null, { tmpDir: path.join(state, 'tmp'), inMemory });
      const got = await scan.toArray();
      assert.deepEqual(
        got.map((f) => f.rel),
        want.rels,
        `${what}: the selected entries in walk order`,
      );
      assert.equal(scan.digest, want.digest, `${what}${cached ? ', through the stat cache' : ''}`);
      assert.equal(scan.count, want.rels.length);
      if (sel === SELECT_ALL) {
        // A COPY of everything is keyed by the scan's digest, without reading the list again.
        assert.equal(`sha256:${await scan.digestOf(['.'])}`, want.digest);
        assert.equal(`sha256:${await scan.digestOf(['*'])}`, want.digest, 'the same entries matched one by one');
      }
      await scan.close();
    }
  }
  // A scan list in a file is unlinked at once: nothing stays in tmp/.
  assert.deepEqual(await fsp.readdir(path.join(state, 'tmp')), []);
});

test('the stat cache is a record per directory: reused, rewritten on change, old and torn records ignored', async (t) => {
  const { state, ctx } = await tempDirs(t);
  makeTree(ctx);
  const root = await fsp.realpath(ctx);
  const base = path.join(state, 'cache', 'checksums');
  const dir = path.join(base, createHash('sha256').update(root).digest('hex'));
  // A version 1 cache of the same context (one JSON document) is removed, not read.
  await fsp.mkdir(base, { recursive: true });
  await fsp.writeFile(`${dir}.json`, JSON.stringify({ version: 1, root, files: { B: { size: 5, mtime: '0', ino: '0', mode: 0, hash: 'f'.repeat(64) } } }));
  const scan = async () => {
    const cache = await ChecksumCache.open(state, ctx);
    const s = await scanContext(ctx, SELECT_ALL, cache);
    await s.close();
    return { digest: s.digest, hits: cache.hits, misses: cache.misses };
  };
  const want = expected(ctx, SELECT_ALL).digest;
  const files = 17 + 300; // regular files in makeTree, skip/ and gone/ included
  assert.deepEqual(await scan(), { digest: want, hits: 0, misses: files });
  await assert.rejects(fsp.stat(`${dir}.json`), { code: 'ENOENT' });
  const records = await fsp.readdir(dir);
  // Directories holding regular files: '', a, a/y, é, odd, bin, skip, skip/deeper, gone/inner, many.
  assert.equal(records.length, 10);
  assert.ok(records.every((r) => /^[0-9a-f]{64}\.json$/.test(r)), `no temp files left: ${records}`);
  assert.deepEqual(await scan(), { digest: want, hits: files, misses: 0 });

  // A changed file is re-hashed; a removed one leaves its directory's record.
  await fsp.writeFile(path.join(ctx, 'a/x'), 'changed');
  await fsp.rm(path.join(ctx, 'many/f000'));
  const after = expected(ctx, SELECT_ALL).digest;
  assert.deepEqual(await scan(), { digest: after, hits: files - 2, misses: 1 });
  const manyRecord = path.join(dir, `${createHash('sha256').update('many').digest('hex')}.json`);
  const rec = JSON.parse(await fsp.readFile(manyRecord, 'utf8'));
  assert.equal(rec.dir, 'many');
  assert.equal(Object.keys(rec.files).length, 299);
  assert.equal(rec.files.f000, undefined);

  // A torn or foreign record is a miss for its directory only.
  await fsp.writeFile(manyRecord, '{"version": 2, "dir": "many", "files": {');
  assert.deepEqual(await scan(), { digest: after, hits: files - 1 - 299, misses: 299 });
  await fsp.writeFile(manyRecord, JSON.stringify({ ...rec, dir: 'other' }));
  assert.deepEqual(await scan(), { digest: after, hits: files - 1 - 299, misses: 299 });
  assert.deepEqual(await scan(), { digest: after, hits: files - 1, misses: 0 });
});

test('concurrent scans of one context share the stat cache safely', async (t) => {
  const { state, ctx } = await tempDirs(t);
  makeTree(ctx);
  const want = expected(ctx, SELECT_ALL).digest;
  const scans = await Promise.all(
    [0, 1, 2].map(async () => {
      const s = await scanContext(ctx, SELECT_ALL, await ChecksumCache.open(state, ctx));
      await s.close();
      return s.digest;
    }),
  );
  assert.deepEqual(scans, [want, want, want]);
  const cache = await ChecksumCache.open(state, ctx);
  assert.equal((await scanContext(ctx, SELECT_ALL, cache)).digest, want);
  assert.equal(cache.misses, 0, 'every record written whole by one of them');
});

test('img du counts the context caches and img prune removes them', async (t) => {
  const { diskUsage, prune } = await import('../../lib/state/du');
  const { state, ctx } = await tempDirs(t);
  makeTree(ctx);
  const first = await ChecksumCache.open(state, ctx);
  await (await scanContext(ctx, SELECT_ALL, first)).close();
  const rows = (await diskUsage(state)).filter((r) => r.type === 'cache');
  assert.equal(rows.length, 1);
  assert.ok(rows[0].id.startsWith('checksums/') && rows[0].reclaimable);
  assert.ok(rows[0].size > 300 * 64, `the records' bytes are counted: ${rows[0].size}`);
  const { removed } = await prune(state);
  assert.deepEqual(
    removed.filter((r) => r.type === 'cache').map((r) => r.id),
    rows.map((r) => r.id),
  );
  assert.deepEqual(await fsp.readdir(path.join(state, 'cache', 'checksums')), []);
  assert.equal((await diskUsage(state)).filter((r) => r.type === 'cache').length, 0);
  const again = await ChecksumCache.open(state, ctx);
  await (await scanContext(ctx, SELECT_ALL, again)).close();
  assert.equal(again.hits, 0, 'rebuilt after prune');
});

test('without the addon (or one older than statDir) the scan stats by promises and gives the same entries and digest', async (t) => {
  const { ctx } = await tempDirs(t);
  makeTree(ctx);
  const script = `(async () => {
    const { scanContext, SELECT_ALL } = require(${JSON.stringify(path.join(REPO, 'lib/solver/checksum.ts'))});
    const scan = await scanContext(process.argv[1], SELECT_ALL, null);
    console.log(JSON.stringify({ digest: scan.digest, rels: (await scan.toArray()).map((f) => f.rel) }));
  })();`;
  const out = execFileSync(process.execPath, ['--import', TSX, '-e', script, ctx], { env: { ...process.env, IMG_ADDON_PATH: path.join(ctx, 'no-addon.node') } });
  const want = expected(ctx, SELECT_ALL);
  assert.deepEqual(JSON.parse(out.toString()), { digest: want.digest, rels: want.rels });
});

test('a context name that is not UTF-8 is refused with its bytes shown, unless it is not selected; so are a missing or non-directory context', async (t) => {
  const { ctx } = await tempDirs(t);
  await assert.rejects(scanContext(path.join(ctx, 'missing'), SELECT_ALL, null), NotFoundError);
  fs.writeFileSync(path.join(ctx, 'file'), 'not a dir');
  await assert.rejects(scanContext(path.join(ctx, 'file'), SELECT_ALL, null), UsageError);
  fs.rmSync(path.join(ctx, 'file'));
  fs.mkdirSync(path.join(ctx, 'data'));
  fs.writeFileSync(path.join(ctx, 'data', 'ok.txt'), 'ok');
  fs.writeFileSync(Buffer.from(`${ctx}/data/bad\xff.txt`, 'latin1'), 'bytes');
  await assert.rejects(scanContext(ctx, SELECT_ALL, null), (err: unknown) => {
    assert.ok(err instanceof UnsupportedError, String(err));
    assert.match(err.message, /not UTF-8: .*\/data\/bad\\xff\.txt$/);
    assert.match(err.hint ?? '', /exclude it in \.dockerignore/);
    return true;
  });
  // Excluded (the pattern sees the name as Node decodes it) or outside the COPY sources: no error.
  const ignored: Selector = { excluded: (rel) => rel.startsWith('data/bad'), mayReinclude: () => false };
  const onlyOk: Selector = { ...SELECT_ALL, included: includeMatcher(['data/ok.txt']) };
  for (const sel of [ignored, onlyOk]) {
    const scan = await scanContext(ctx, sel, null);
    assert.deepEqual((await scan.toArray()).map((f) => f.rel), ['data', 'data/ok.txt']);
    await scan.close();
  }
});

test('an unreadable directory fails the scan with its path and the fix; excluded, it is never opened', { skip: skipUnlessRootless() }, async () => {
  const root = tempDir('img-sum-perm-');
  try {
    const ctx = path.join(root, 'ctx');
    fs.mkdirSync(path.join(ctx, 'locked'), { recursive: true });
    fs.writeFileSync(path.join(ctx, 'open.txt'), 'readable');
    fs.chmodSync(ctx, 0o755);
    fs.chmodSync(path.join(ctx, 'open.txt'), 0o644);
    fs.chmodSync(path.join(ctx, 'locked'), 0o000);
    const script = `(async () => {
      const { scanContext, SELECT_ALL } = require(${JSON.stringify(path.join(REPO, 'lib/solver/checksum.ts'))});
      const ctx = process.argv[1];
      const out = {};
      try { await scanContext(ctx, SELECT_ALL, null); out.all = 'scanned'; }
      catch (e) { out.all = { code: e.code, message: e.message, hint: e.hint }; }
      const scan = await scanContext(ctx, { excluded: (rel) => rel === 'locked', mayReinclude: () => false }, null);
      out.excluded = (await scan.toArray()).map((f) => f.rel);
      console.log(JSON.stringify(out));
    })();`;
    const r = await runAsUser([process.execPath, '--import', TSX, '-e', script, ctx]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { all: { code: string; message: string; hint: string }; excluded: string[] };
    assert.equal(out.all.code, new HostError('').code, 'a HostError');
    assert.match(out.all.message, new RegExp(`^cannot read ${path.join(ctx, 'locked')} in the build context: EACCES`));
    assert.match(out.all.hint, /make it readable, or exclude it in \.dockerignore/);
    assert.deepEqual(out.excluded, ['open.txt']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
