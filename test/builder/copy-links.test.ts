// COPY of a whole directory hard-links the source snapshot's stored files into its own
// snapshot instead of copying their data (lib/solver/ops/file.ts copyWholeDir). Shared
// inodes must never change: on every backend a RUN that appends to, chmods and re-times
// COPYed files in a later step leaves the COPY's layer, its snapshot and the context's
// snapshot as they were, and the image holds exactly the owners, modes, times and
// contents the sources have — what a copy gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { TarParser, type TarHeader } from '../../lib/archive/tar';
import { cleanup, rootlessUser, runImgRootless } from '../helpers/rootless';
import { setup, skip, storedConfig } from './helpers';

const BACKENDS = ['overlayfs', 'fuse-overlayfs', 'native'] as const;

const DOCKERFILE = `FROM busybox AS stage
RUN mkdir -p /out/d && echo stage > /out/d/s.txt && chmod 751 /out/d/s.txt && touch -d @1500000000 /out/d/s.txt
FROM busybox AS stage2
RUN mkdir /w && echo w > /w/w.txt && chmod 640 /w/w.txt && touch -d @1600000000 /w/w.txt
FROM busybox AS changed
WORKDIR /app
COPY . /ctx
COPY --from=stage /out /from
COPY --from=stage /out /from2
COPY --from=stage2 /w .
RUN echo more >> /app/w.txt && echo more >> /ctx/a.txt && chmod 700 /ctx/sub/c.txt && touch -d @1000000000 /ctx/sub/b.sh && echo more >> /from/d/s.txt && chmod 600 /from/d/s.txt
`;

interface Entry {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  type: string;
  body: string;
}

// A layer blob (gzip) → path → entry, with file bodies.
function layerEntries(state: string, digest: string): Map<string, Entry> {
  const blob = fs.readFileSync(path.join(state, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const out = new Map<string, Entry>();
  let cur: { name: string; h: TarHeader; chunks: Buffer[] } | null = null;
  const p = new TarParser({
    entry: (h) => (cur = { name: h.name.replace(/^\.?\//, '').replace(/\/$/, ''), h, chunks: [] }),
    data: (c) => cur!.chunks.push(Buffer.from(c)),
    endEntry: () => {
      const { name, h, chunks } = cur!;
      out.set(name, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: Math.floor(h.mtime), type: h.type, body: Buffer.concat(chunks).toString('latin1') });
    },
  });
  p.push(zlib.gunzipSync(blob));
  return out;
}

// Every regular file under the backend's snapshot dirs whose path ends with `rel`.
function storedFiles(state: string, backend: string, rel: string): { file: string; st: fs.Stats; body: string }[] {
  const root = path.join(state, 'snapshots', backend);
  const out: { file: string; st: fs.Stats; body: string }[] = [];
  for (const id of fs.readdirSync(root)) {
    const file = path.join(root, id, 'fs', rel);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st?.isFile()) out.push({ file, st, body: fs.readFileSync(file, 'latin1') });
  }
  return out;
}

for (const backend of BACKENDS) {
  test(`img build --backend ${backend} (rootless): COPY links stored files; a later RUN changing them leaves the COPY layer and both snapshots intact`, { skip, timeout: 240_000 }, async (t) => {
    const big = crypto.randomBytes(1 << 20).toString('latin1');
    const e = await setup({ Dockerfile: DOCKERFILE, 'a.txt': 'alpha\n', 'sub/b.sh': '#!/bin/sh\necho b\n', 'sub/c.txt': 'secret\n', 'big.bin': big });
    t.after(() => cleanup(e.root));
    const ctx = (p: string) => path.join(e.ctx, p);
    fs.chmodSync(ctx('sub/b.sh'), 0o755);
    fs.chmodSync(ctx('sub/c.txt'), 0o600);
    fs.utimesSync(ctx('sub/c.txt'), 1_200_000_000, 1_200_000_000);
    fs.writeFileSync(ctx('big.bin'), big, 'latin1');
    const u = rootlessUser()!;
    execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, e.ctx]);
    const srcTime = (p: string) => Math.floor(fs.statSync(ctx(p)).mtimeMs / 1000);

    const r = await runImgRootless(['--backend', backend, '-s', e.state, 'build', '--progress', 'plain', '-t', 'changed', e.ctx]);
    assert.equal(r.code, 0, r.stderr);
    const { manifest } = await storedConfig(e, 'docker.io/library/changed:latest');
    const layers = manifest.layers.map((l) => layerEntries(e.state, l.digest));
    const first = (p: string) => layers.find((l) => l.has(p))!;
    const [copied, fromStage, intoWorkdir, run] = [first('ctx/a.txt'), first('from/d/s.txt'), first('app/w.txt'), layers.at(-1)!];
    assert.equal(new Set([copied, fromStage, intoWorkdir, run]).size, 4, 'COPY ., COPY --from, COPY --from … . and RUN have a layer each');

    // The COPY layers: the sources' modes, times and contents, owned by root (the
    // context) or by the stage's owner, as a copy has them.
    const want = (m: Map<string, Entry>, p: string, mode: number, mtime: number, body: string) => {
      const got = m.get(p);
      assert.ok(got, `${p} is in the layer: ${[...m.keys()].join(' ')}`);
      assert.deepEqual({ ...got, body: got.body === body ? 'same' : got.body.slice(0, 40) }, { mode, uid: 0, gid: 0, mtime, type: 'file', body: 'same' }, p);
    };
    want(copied, 'ctx/a.txt', 0o644, srcTime('a.txt'), 'alpha\n');
    want(copied, 'ctx/sub/b.sh', 0o755, srcTime('sub/b.sh'), '#!/bin/sh\necho b\n');
    want(copied, 'ctx/sub/c.txt', 0o600, 1_200_000_000, 'secret\n');
    want(copied, 'ctx/big.bin', 0o644, srcTime('big.bin'), big);
    assert.equal(copied.get('ctx')?.mode, 0o755);
    want(fromStage, 'from/d/s.txt', 0o751, 1_500_000_000, 'stage\n');
    // Into WORKDIR's empty directory, which keeps its own mode and owner.
    want(intoWorkdir, 'app/w.txt', 0o640, 1_600_000_000, 'w\n');
    assert.deepEqual([intoWorkdir.get('app')?.type, intoWorkdir.get('app')?.mode, intoWorkdir.get('app')?.uid], ['dir', 0o755, 0]);

    // The RUN layer has the changes…
    want(run, 'ctx/a.txt', 0o644, run.get('ctx/a.txt')!.mtime, 'alpha\nmore\n');
    want(run, 'ctx/sub/c.txt', 0o700, 1_200_000_000, 'secret\n');
    want(run, 'ctx/sub/b.sh', 0o755, 1_000_000_000, '#!/bin/sh\necho b\n');
    want(run, 'from/d/s.txt', 0o600, run.get('from/d/s.txt')!.mtime, 'stage\nmore\n');
    want(run, 'app/w.txt', 0o640, run.get('app/w.txt')!.mtime, 'w\nmore\n');

    // …and the stored inodes did not take them: the context snapshot's files are the very
    // inodes the COPY snapshot holds (links, not copies), still as they came from the context.
    const shared = (srcRel: string, copyRel: string) => {
      const src = storedFiles(e.state, backend, srcRel);
      assert.equal(src.length, 1, `one stored ${srcRel}`);
      const linked = storedFiles(e.state, backend, copyRel).filter((f) => f.st.ino === src[0].st.ino);
      assert.equal(linked.length, 1, `the COPY snapshot's ${copyRel} is the stored ${srcRel}`);
      assert.equal(src[0].st.nlink, 2);
      return src[0];
    };
    const a = shared('a.txt', 'ctx/a.txt');
    assert.deepEqual([a.body, a.st.mode & 0o7777], ['alpha\n', 0o644]);
    const c = shared('sub/c.txt', 'ctx/sub/c.txt');
    assert.deepEqual([c.body, c.st.mode & 0o7777, Math.floor(c.st.mtimeMs / 1000)], ['secret\n', 0o600, 1_200_000_000]);
    const b = shared('sub/b.sh', 'ctx/sub/b.sh');
    assert.equal(Math.floor(b.st.mtimeMs / 1000), srcTime('sub/b.sh'));
    const st = shared('out/d/s.txt', 'from/d/s.txt');
    assert.deepEqual([st.body, st.st.mode & 0o7777, Math.floor(st.st.mtimeMs / 1000)], ['stage\n', 0o751, 1_500_000_000]);
    // The same files again into the same image: copied, so the image never holds one
    // inode at two paths (a tree walker would take them for a hard link).
    // Into WORKDIR's empty directory: linked too, except on fuse-overlayfs, which marks the
    // new directory opaque with marker files inside it (not empty in the layer below).
    if (backend === 'fuse-overlayfs') assert.equal(storedFiles(e.state, backend, 'w/w.txt')[0].st.nlink, 1);
    else {
      const w = shared('w/w.txt', 'app/w.txt');
      assert.deepEqual([w.body, w.st.mode & 0o7777, Math.floor(w.st.mtimeMs / 1000)], ['w\n', 0o640, 1_600_000_000]);
    }
    const again = storedFiles(e.state, backend, 'from2/d/s.txt');
    assert.ok(again.length >= 1 && again.every((f) => f.st.ino !== st.st.ino && f.body === 'stage\n'), 'the second COPY --from copied');
    assert.equal(first('from2/d/s.txt').get('from2/d/s.txt')?.type, 'file');
  });
}
