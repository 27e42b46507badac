// COPY/ADD as BuildKit's Dockerfile integration tests pin them down, checked on
// real builds (the unprivileged user, busybox base): which context files a COPY
// reaches through symlinks, the modes of the directories a copy creates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TarParser } from '../../lib/archive/tar';
import { cleanup } from '../helpers/rootless';
import { build, setup, skip, type Env } from './helpers';

interface Entry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  body: string;
  link: string;
}

// Builds `dockerfile` with the context `files` (plus `prepare` on the context dir) to
// a rootfs tar and returns its entries outside /bin and /etc, by path.
async function rootfs(dockerfile: string, files: Record<string, string>, prepare?: (ctx: string) => void, args: string[] = []): Promise<{ e: Env; entries: Map<string, Entry>; stderr: string; code: number }> {
  const e = await setup({ Dockerfile: dockerfile, ...files });
  prepare?.(e.ctx);
  const out = path.join(e.root, 'out.tar');
  const r = await build(e, [...args, '-o', `type=tar,dest=${out}`, e.ctx]);
  const entries = new Map<string, Entry>();
  if (r.code === 0) {
    let cur: { name: string; entry: Entry; chunks: Buffer[] } | null = null;
    const p = new TarParser({
      entry: (h) => {
        const name = h.name.replace(/^\.?\//, '').replace(/\/$/, '');
        cur = { name, entry: { type: h.type, mode: (h.mode & 0o7777).toString(8), uid: h.uid, gid: h.gid, body: '', link: h.linkname ?? '' }, chunks: [] };
      },
      data: (c) => cur!.chunks.push(Buffer.from(c)),
      endEntry: () => {
        cur!.entry.body = Buffer.concat(cur!.chunks).toString();
        if (!/^(bin|etc)(\/|$)/.test(cur!.name)) entries.set(cur!.name, cur!.entry);
      },
    });
    p.push(fs.readFileSync(out));
  }
  return { e, entries, stderr: r.stderr, code: r.code };
}

test('COPY through context symlinks: a wildcard brings what each matching link points to; a linked directory on the path is followed', { skip, timeout: 120_000 }, async (t) => {
  const { e, entries, stderr, code } = await rootfs(
    'FROM busybox\nCOPY sub/l* /alllinks/\nCOPY link/lfile /vialink\n',
    { 'sub/lfile': 'lfile-contents', 'sub/subfile': 'subfile-contents', 'sub/baz': 'baz-contents' },
    (ctx) => {
      fs.symlinkSync('subfile', path.join(ctx, 'sub', 'l0'));
      fs.symlinkSync('second', path.join(ctx, 'sub', 'l1'));
      fs.symlinkSync('baz', path.join(ctx, 'sub', 'second'));
      fs.symlinkSync('sub', path.join(ctx, 'link'));
    },
  );
  t.after(() => cleanup(e.root));
  assert.equal(code, 0, stderr);
  const body = (p: string) => [entries.get(p)?.type, entries.get(p)?.body];
  // Each match of the wildcard is copied as what it points to (followed, chains too).
  assert.deepEqual(body('alllinks/l0'), ['file', 'subfile-contents']);
  assert.deepEqual(body('alllinks/l1'), ['file', 'baz-contents']);
  assert.deepEqual(body('alllinks/lfile'), ['file', 'lfile-contents']);
  assert.deepEqual([...entries.keys()].filter((p) => p.startsWith('alllinks/')).sort(), ['alllinks/l0', 'alllinks/l1', 'alllinks/lfile']);
  assert.deepEqual(body('vialink'), ['file', 'lfile-contents']);
});
