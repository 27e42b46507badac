// COPY/ADD as BuildKit's Dockerfile integration tests pin them down, checked on
// real builds (the unprivileged user, busybox base): which context files a COPY
// reaches through symlinks, the modes of the directories a copy creates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
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
  mtime: number;
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
        cur = { name, entry: { type: h.type, mode: (h.mode & 0o7777).toString(8), uid: h.uid, gid: h.gid, body: '', link: h.linkname ?? '', mtime: Math.floor(h.mtime) }, chunks: [] };
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

test('ADD of URLs: named from the URL path (__unnamed__ for "/"), 0600, dated by Last-Modified else 1970; --checksum sha512 checked, a mismatch in BuildKit\'s words', { skip, timeout: 120_000 }, async (t) => {
  const modified = new Date(Math.floor(Date.now() / 1000 - 86400) * 1000);
  const server = http.createServer((req, res) => {
    if (req.url === '/foo') res.writeHead(200).end('content1');
    else if (req.url === '/') res.writeHead(200, { 'Last-Modified': modified.toUTCString() }).end('content2');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const sha512 = `sha512:${createHash('sha512').update('content1').digest('hex')}`;
  const { e, entries, stderr, code } = await rootfs(`FROM busybox\nADD ${url}/foo /dest/\nADD ${url}/ /dest/\nADD --checksum=${sha512} ${url}/foo /sum\n`, {});
  t.after(() => cleanup(e.root));
  assert.equal(code, 0, stderr);
  const show = (p: string) => ({ body: entries.get(p)?.body, mode: entries.get(p)?.mode, mtime: entries.get(p)?.mtime });
  assert.deepEqual(show('dest/foo'), { body: 'content1', mode: '600', mtime: 0 });
  assert.deepEqual(show('dest/__unnamed__'), { body: 'content2', mode: '600', mtime: modified.getTime() / 1000 });
  assert.equal(entries.get('sum')?.body, 'content1');

  const empty = `sha256:${createHash('sha256').update('').digest('hex')}`;
  const bad = await rootfs(`FROM busybox\nADD --checksum=${empty} ${url}/foo /x\n`, {});
  t.after(() => cleanup(bad.e.root));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, new RegExp(`digest mismatch sha256:${createHash('sha256').update('content1').digest('hex')}: ${empty}`));
});

test('COPY --chmod on a real build: the directories it creates take the mode (BuildKit\'s testCopyChmod)', { skip, timeout: 120_000 }, async (t) => {
  const { e, entries, stderr, code } = await rootfs(
    'FROM busybox\nCOPY --chmod=0644 foo /\nCOPY --chmod=777 bar /baz\nCOPY --chmod=0 foo /foobis\nCOPY --chmod=777 foo /parent/foo\nCOPY --chmod=770 foo /parent/sub/foo\nCOPY foo /plain/foo\n',
    { foo: 'foo-contents', bar: 'bar-contents' },
    (ctx) => {
      fs.chmodSync(path.join(ctx, 'foo'), 0o600);
      fs.chmodSync(path.join(ctx, 'bar'), 0o700);
    },
  );
  t.after(() => cleanup(e.root));
  assert.equal(code, 0, stderr);
  const modes = Object.fromEntries(['foo', 'baz', 'foobis', 'parent', 'parent/sub', 'parent/sub/foo', 'plain'].map((p) => [p, entries.get(p)?.mode]));
  assert.deepEqual(modes, { foo: '644', baz: '777', foobis: '0', parent: '777', 'parent/sub': '770', 'parent/sub/foo': '770', plain: '755' });
});

test('the build context as BuildKit sends it: hard links stay links in the COPY layer, a socket is an empty regular file (testCopySocket)', { skip, timeout: 120_000 }, async (t) => {
  const e = await setup({ Dockerfile: 'FROM busybox\nCOPY . /c/\nCOPY d /d2\n', 'd/a': 'A', 'd/sub/b': 'B' });
  t.after(() => cleanup(e.root));
  fs.linkSync(path.join(e.ctx, 'd', 'a'), path.join(e.ctx, 'd', 'hard'));
  const { createServer } = await import('node:net');
  const sock = createServer();
  await new Promise<void>((r) => sock.listen(path.join(e.ctx, 'sock.sock'), r));
  t.after(() => sock.close());
  fs.chmodSync(path.join(e.ctx, 'sock.sock'), 0o640);
  if (process.getuid?.() === 0) fs.chownSync(path.join(e.ctx, 'sock.sock'), fs.statSync(e.ctx).uid, fs.statSync(e.ctx).gid);
  const out = path.join(e.root, 'img.tar');
  const r = await build(e, ['-o', `type=docker,dest=${out}`, '-t', 'links:1', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  // The last two layers of the image: each COPY's entries (type 'link': a hard link).
  const docker = path.join(e.root, 'docker');
  fs.mkdirSync(docker);
  execFileSync('tar', ['xf', out, '-C', docker]);
  const manifest = JSON.parse(fs.readFileSync(path.join(docker, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const layer = (p: string) => {
    const entries = new Map<string, { type: string; link: string; mode: string; size: number }>();
    let data = fs.readFileSync(path.join(docker, p));
    if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
    const parser = new TarParser({
      entry: (h) => entries.set(h.name.replace(/^\.?\//, '').replace(/\/$/, ''), { type: h.type, link: h.linkname, mode: (h.mode & 0o7777).toString(8), size: h.size }),
      data: () => {},
      endEntry: () => {},
    });
    parser.push(data);
    return entries;
  };
  const layers = manifest[0].Layers;
  const all = layer(layers[layers.length - 2]);
  const d2 = layer(layers[layers.length - 1]);
  assert.deepEqual([all.get('c/d/hard')?.type, all.get('c/d/hard')?.link], ['link', 'c/d/a'], 'COPY . keeps the link');
  assert.deepEqual([d2.get('d2/hard')?.type, d2.get('d2/hard')?.link], ['link', 'd2/a'], 'COPY d keeps the link');
  assert.deepEqual(all.get('c/sock.sock'), { type: 'file', link: '', mode: '640', size: 0 });
});
