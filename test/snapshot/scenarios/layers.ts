// Runs inside the user namespace (as the rootless test user): unpacks stacks of crafted
// layers with one snapshot backend and reports what each stack became, for
// test/snapshot/differential.test.ts and test/snapshot/overlay-xattrs.test.ts.
// argv: <stateDir> <backend> <spec.json>; spec: { stacks: string[][] (layer tar files,
// bottom first), roundTrip?: boolean (also write every layer back from its snapshot) }.
// Names are reported as byte strings (one char per byte), so JSON carries them exactly.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { writeLayer } from '../../../lib/archive/diff';
import { llistxattr, lgetxattr } from '../../../lib/archive/sys';
import { enterUserNamespace } from '../../../lib/exec/userns';
import type { Manifest } from '../../../lib/images/types';
import { ContentStore } from '../../../lib/content/store';
import { chainIds, openSnapshotter, unpackImage, withMounted, type Snapshotter } from '../../../lib/snapshot/index';
import { fsPath as F, readdirBytes, readlinkBytes, toBytes } from '../../../lib/util/bytenames';
import { findError, ImgError } from '../../../lib/util/errors';
import { imageFromLayers } from '../../fixtures/images';

export interface LayerEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string;
  sha?: string;
  xattrs?: Record<string, string>; // name → hex value
}

export interface StackReport {
  error?: { code: string; message: string };
  tree?: Record<string, string>; // path → description (see describe())
  links?: string[][]; // hard-link groups, sorted
  layers?: LayerEntry[][]; // roundTrip: each layer as written back from its snapshot
}

function xattrsOf(p: string): string {
  let names: string[];
  try {
    names = llistxattr(F(p));
  } catch {
    return '';
  }
  const xs = names
    .filter((n) => n.startsWith('user.'))
    .sort()
    .map((n) => `${n}=${lgetxattr(F(p), n)?.toString('hex') ?? ''}`);
  return xs.length ? ` [${xs.join(',')}]` : '';
}

/**
 * The merged tree as a person compares it: type, mode, owner; a file's size, content hash
 * and mtime; a link's target; user.* xattrs. Directory mtimes are left out: a directory
 * the layer does not name takes the time its children were written (on every backend, as
 * in containerd).
 */
function describe(root: string): { tree: Record<string, string>; links: string[][] } {
  const tree: Record<string, string> = {};
  const inodes = new Map<number, string[]>();
  const stack = [''];
  tree['/'] = `dir ${(fs.lstatSync(root).mode & 0o7777).toString(8)}${xattrsOf(root)}`;
  while (stack.length) {
    const rel = stack.pop()!;
    const dir = rel ? root + '/' + rel : root;
    for (const name of readdirBytes(dir).sort()) {
      const r = rel ? rel + '/' + name : name;
      const p = root + '/' + r;
      const st = fs.lstatSync(F(p));
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : 'other';
      let d = `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isFile()) {
        d += ` ${st.size} ${createHash('sha256').update(fs.readFileSync(F(p))).digest('hex').slice(0, 12)} t${Math.floor(st.mtimeMs / 1000)}`;
        if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), r]);
      } else if (st.isSymbolicLink()) d += ` -> ${readlinkBytes(p)}`;
      if (!st.isSymbolicLink()) d += xattrsOf(p);
      tree[r] = d;
      if (st.isDirectory()) stack.push(r);
    }
  }
  const links = [...inodes.values()].filter((g) => g.length > 1).map((g) => g.sort());
  return { tree, links: links.sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
}

async function entriesOf(tar: NodeJS.ReadableStream): Promise<LayerEntry[]> {
  const ex = tarStream.extract({ filenameEncoding: 'latin1' } as Parameters<typeof tarStream.extract>[0]);
  const out: LayerEntry[] = [];
  ex.on('entry', (h, body, next) => {
    const hash = createHash('sha256');
    body.on('data', (c) => hash.update(c as Buffer));
    body.on('end', () => {
      const e: LayerEntry = { name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000) };
      if (h.linkname) e.linkname = h.linkname;
      if (h.type === 'file') e.sha = hash.digest('hex').slice(0, 12);
      const xs = Object.entries(h.pax ?? {}).filter(([k]) => k.startsWith('SCHILY.xattr.'));
      if (xs.length) e.xattrs = Object.fromEntries(xs.map(([k, v]) => [k.slice('SCHILY.xattr.'.length), Buffer.from(v).toString('hex')]));
      out.push(e);
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  (tar as Readable).pipe(ex);
  await done;
  return out;
}

async function writeBack(sn: Snapshotter, id: string): Promise<LayerEntry[]> {
  const src = await sn.diffRoot(id);
  try {
    return await entriesOf(writeLayer(sn.changes(id), src.rootfs, { format: sn.diskFormat }));
  } finally {
    await src.release();
  }
}

async function main() {
  await enterUserNamespace();
  const [state, backend, specFile] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8')) as { stacks: string[][]; roundTrip?: boolean };
  const sn = await openSnapshotter(state, backend as 'native');
  const content = new ContentStore(state);
  const reports: StackReport[] = [];
  for (const [i, files] of spec.stacks.entries()) {
    const img = imageFromLayers(files.map((f) => fs.readFileSync(f)));
    await img.writeToStore(state, `stack${i}`);
    const manifest = await content.readJson<Manifest>(img.manifest.digest);
    let top: string;
    try {
      top = await unpackImage(state, sn, manifest, img.config);
    } catch (err) {
      const e = findError(err, ImgError);
      reports.push({ error: { code: e?.code ?? 'unknown', message: (err as Error).message } });
      continue;
    }
    const r: StackReport = await withMounted(sn, top, async (rootfs) => describe(toBytes(rootfs)));
    if (spec.roundTrip) {
      r.layers = [];
      for (const chain of chainIds(img.diffIds)) r.layers.push(await writeBack(sn, (await sn.get(chain))!.id));
    }
    reports.push(r);
  }
  process.stdout.write(JSON.stringify({ backend: sn.backend, reports }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
