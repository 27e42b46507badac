// Disk usage and pruning of the state dir: snapshots of every backend, content
// blobs and partial writes. A snapshot is reclaimable when no named image's layer
// chain (chainIDs of its config's diff_ids) names it and no process is using it;
// a blob when it is unreachable from named images and build-cache roots; a
// partial write (ingest/) when no live process holds it.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContentStore } from '../content/store';
import { ImageStore } from '../images/store';
import type { Descriptor, Digest, ImageConfig, Manifest } from '../images/types';
import { localManifests, walk } from '../images/walk';
import type { BaseSnapshotter, SnapshotMeta } from '../snapshot/base';
import { BACKENDS, newSnapshotter } from '../snapshot/open';
import type { SnapshotBackend } from '../snapshot/types';
import { chainIds } from '../snapshot/unpack';
import { isErrno, UsageError } from '../util/errors';
import { escapeControls } from '../util/escape';
import { compileGlob } from '../util/glob';
import { debug } from '../util/log';
import { cacheRoots, collectGarbage } from './gc';
import { ingestEntries, reclaimableIngest, removeSnapshotLeftovers, removeStaleTmp, type IngestEntry } from './leftovers';
import { withStoreLock } from './lock';

export interface UsageRow {
  id: string;
  type: 'snapshot' | 'blob' | 'ingest' | 'cache';
  backend?: SnapshotBackend;
  inUse: boolean;
  reclaimable: boolean;
  size: number;
  description: string;
  parent?: string | null;
}

// chainIDs of every layer prefix of every locally present manifest of every named image.
export async function referencedChainIds(stateDir: string): Promise<Set<string>> {
  const content = new ContentStore(stateDir);
  const out = new Set<string>();
  for (const rec of await new ImageStore(stateDir).list()) {
    let manifests: Descriptor[];
    try {
      manifests = await localManifests(content, rec.target);
    } catch (err) {
      debug(`du: cannot resolve ${rec.name}: ${(err as Error).message}`);
      continue;
    }
    for (const m of manifests) {
      try {
        const manifest = await content.readJson<Manifest>(m.digest);
        const config = await content.readJson<ImageConfig>(manifest.config.digest);
        for (const c of chainIds(config.rootfs?.diff_ids ?? [])) out.add(c);
      } catch (err) {
        debug(`du: skipping manifest ${m.digest} of ${rec.name}: ${(err as Error).message}`);
      }
    }
  }
  return out;
}

// Backends that have state under <state>/snapshots/.
export async function presentBackends(stateDir: string): Promise<SnapshotBackend[]> {
  const out: SnapshotBackend[] = [];
  for (const b of BACKENDS) {
    try {
      if ((await fsp.stat(path.join(stateDir, 'snapshots', b))).isDirectory()) out.push(b);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  return out;
}

async function snapshotRows(stateDir: string, referenced: Set<string>): Promise<{ rows: UsageRow[]; sns: Map<SnapshotBackend, BaseSnapshotter> }> {
  const rows: UsageRow[] = [];
  const sns = new Map<SnapshotBackend, BaseSnapshotter>();
  const backends = await presentBackends(stateDir);
  for (const backend of backends) {
    const sn = newSnapshotter(stateDir, backend);
    sns.set(backend, sn);
    const metas = await sn.listMeta();
    const busy = new Set<string>();
    await Promise.all(metas.map(async (m) => (await sn.isBusy(m.id)) && busy.add(m.id)));
    const usages = await Promise.all(metas.map((m) => sn.usage(m.id).catch(() => ({ size: 0, inodes: 0 }))));
    metas.forEach((m: SnapshotMeta, i) => {
      const isRef = m.kind === 'committed' && referenced.has(m.key ?? m.id);
      rows.push({
        id: m.id,
        type: 'snapshot',
        backend,
        inUse: busy.has(m.id),
        reclaimable: !isRef && !busy.has(m.id),
        size: usages[i].size,
        // Ids (chainIDs) repeat across backends: say which one when several have state.
        description: backends.length > 1 ? `${m.description} [${backend}]` : m.description,
        parent: m.parent,
      });
    });
  }
  return { rows, sns };
}

async function blobRows(stateDir: string): Promise<UsageRow[]> {
  const content = new ContentStore(stateDir);
  const roots: Descriptor[] = (await new ImageStore(stateDir).list()).map((r) => r.target);
  for (const d of await cacheRoots(stateDir)) roots.push({ mediaType: '', digest: d, size: (await content.stat(d))?.size ?? 0 });
  const reachable = await walk(content, roots);
  const rows: UsageRow[] = [];
  for await (const b of content.list()) {
    const desc = reachable.get(b.digest);
    rows.push({
      id: b.digest,
      type: 'blob',
      inUse: false,
      reclaimable: !desc,
      size: b.size,
      description: desc?.mediaType ? `content ${desc.mediaType}` : desc ? 'content blob' : 'unreferenced content blob',
    });
  }
  return rows;
}

function ingestRow(e: IngestEntry): UsageRow {
  return {
    id: `ingest/${e.name}`,
    type: 'ingest',
    inUse: e.held === true,
    reclaimable: reclaimableIngest(e),
    size: e.size,
    description: e.held === false ? 'partial write of a process that died' : e.held ? 'partial write (in progress)' : 'partial write',
  };
}

// What build contexts leave under cache/: the stat caches of their checksums
// (solver/checksum.ts: a directory of records per context, or a version 1 file) and
// the file list of their last transfer (solver/ops/local.ts). Rebuilt when missing.
const CONTEXT_CACHES = [
  { sub: 'checksums', description: 'stat cache of a build context (checksums)' },
  { sub: 'local-sources', description: 'file list of a build context transfer' },
];

async function contextCacheRows(stateDir: string): Promise<UsageRow[]> {
  const rows: UsageRow[] = [];
  for (const { sub, description } of CONTEXT_CACHES) {
    const dir = path.join(stateDir, 'cache', sub);
    for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
      const p = path.join(dir, name);
      const st = await fsp.lstat(p).catch(() => null);
      if (!st) continue;
      let size = st.size;
      if (st.isDirectory()) {
        for (const f of await fsp.readdir(p).catch(() => [] as string[])) size += (await fsp.lstat(path.join(p, f)).catch(() => null))?.size ?? 0;
      }
      rows.push({ id: `${sub}/${name.replace(/\.json$/, '').slice(0, 12)}`, type: 'cache', inUse: false, reclaimable: true, size, description });
    }
  }
  return rows;
}

export async function diskUsage(stateDir: string): Promise<UsageRow[]> {
  const referenced = await referencedChainIds(stateDir);
  const [{ rows }, blobs, ingest, caches] = await Promise.all([
    snapshotRows(stateDir, referenced),
    blobRows(stateDir),
    ingestEntries(new ContentStore(stateDir).ingestDir),
    contextCacheRows(stateDir),
  ]);
  return [...rows, ...blobs, ...ingest.map(ingestRow), ...caches];
}

// --filter for du: id=, description=, reclaimable=, type=. Same key ORs, keys AND.
export function parseUsageFilters(args: string[]): (row: UsageRow) => boolean {
  const keys = ['id', 'description', 'reclaimable', 'type'];
  const groups = new Map<string, ((r: UsageRow) => boolean)[]>();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter "${arg}" (expected key=value)`, { hint: 'e.g. --filter reclaimable=true' });
    const key = arg.slice(0, eq).trim().toLowerCase();
    const value = arg.slice(eq + 1).replace(/^=/, '');
    let pred: (r: UsageRow) => boolean;
    if (key === 'id') pred = (r) => r.id === value || r.id.startsWith(value) || r.id.replace(/^sha256:/, '').startsWith(value);
    else if (key === 'description') {
      // With * or ?, a wildcard over the whole description (* crosses '/', '[' is a
      // plain character: descriptions read "[stage 1/2] RUN ..."); else a substring.
      const glob = /[*?]/.test(value) ? compileGlob(value, { separator: '', classes: false }) : null;
      pred = (r) => (glob ? glob.matches(r.description) : r.description.includes(value));
    } else if (key === 'reclaimable') {
      if (value !== 'true' && value !== 'false') {
        throw new UsageError(`invalid value "${value}" for filter reclaimable`, { hint: 'use reclaimable=true or reclaimable=false' });
      }
      pred = (r) => r.reclaimable === (value === 'true');
    } else if (key === 'type') pred = (r) => r.type === value;
    else throw new UsageError(`invalid filter "${arg.slice(0, eq)}"`, { hint: `supported filters: ${keys.join(', ')}` });
    const list = groups.get(key) ?? [];
    list.push(pred);
    groups.set(key, list);
  }
  return (row) => [...groups.values()].every((ps) => ps.some((p) => p(row)));
}

// Removes everything no named image references; skips what is in use.
export async function prune(stateDir: string): Promise<{ removed: UsageRow[]; skipped: UsageRow[] }> {
  const referenced = await referencedChainIds(stateDir);
  const { rows, sns } = await snapshotRows(stateDir, referenced);
  const removed: UsageRow[] = [];
  const skipped: UsageRow[] = [];

  // Children before parents: a snapshot goes only when none of its children stays.
  const byBackend = new Map<SnapshotBackend, UsageRow[]>();
  for (const r of rows) byBackend.set(r.backend!, [...(byBackend.get(r.backend!) ?? []), r]);
  for (const [backend, list] of byBackend) {
    const sn = sns.get(backend)!;
    const depth = new Map<string, number>();
    const byId = new Map(list.map((r) => [r.id, r]));
    const depthOf = (id: string, seen = 0): number => {
      if (depth.has(id)) return depth.get(id)!;
      const p = byId.get(id)?.parent;
      const d = p && byId.has(p) && seen < 10000 ? depthOf(p, seen + 1) + 1 : 0;
      depth.set(id, d);
      return d;
    };
    const staying = new Set(list.filter((r) => !r.reclaimable).map((r) => r.id));
    const known = new Set(list.map((r) => r.id));
    const order = list.filter((r) => r.reclaimable).sort((a, b) => depthOf(b.id) - depthOf(a.id));
    for (const r of order) {
      const hasStayingChild = list.some((c) => c.parent === r.id && staying.has(c.id));
      if (hasStayingChild || !(await sn.removeIfIdle(r.id, known))) {
        staying.add(r.id);
        skipped.push(r);
        continue;
      }
      removed.push(r);
    }
  }
  // Every present backend, also one without a single valid snapshot left.
  for (const sn of sns.values()) await removeSnapshotLeftovers(sn);
  await removeStaleTmp(stateDir);

  // Build cache records: the solver treats a missing record as a miss; the context caches
  // are rebuilt by the next build (its transfer then copies the whole context).
  removed.push(...(await contextCacheRows(stateDir)));
  await withStoreLock(stateDir, 'exclusive', async () => {
    for (const sub of ['records', 'layers', 'roots', ...CONTEXT_CACHES.map((c) => c.sub)]) {
      const dir = path.join(stateDir, 'cache', sub);
      for (const n of await fsp.readdir(dir).catch(() => [] as string[])) await fsp.rm(path.join(dir, n), { force: true, recursive: true });
    }
  });

  // Blobs: what the GC will delete, then the GC itself (it also reclaims ingest/).
  const blobsBefore = new Map<Digest, UsageRow>();
  for (const b of await blobRows(stateDir)) blobsBefore.set(b.id as Digest, b);
  const gc = await collectGarbage(stateDir);
  for (const d of gc.removed) {
    const row = blobsBefore.get(d);
    removed.push(row ?? { id: d, type: 'blob', inUse: false, reclaimable: true, size: 0, description: 'unreferenced content blob' });
  }
  removed.push(...gc.ingest.map(ingestRow));
  return { removed, skipped };
}

// The table img du / img prune print: rows, then the summary lines.
export function formatUsage(
  rows: UsageRow[],
  bytesSize: (n: number) => string,
  tabwrite: (rows: string[][]) => string,
  opts: { truncate: boolean; summary: 'Reclaimable' | 'Reclaimed' },
): string {
  // Descriptions quote Dockerfile lines: escaped, one line each.
  const cut = (raw: string) => {
    const s = escapeControls(raw, { oneLine: true });
    return opts.truncate && s.length > 50 ? `${s.slice(0, 50)}...` : s;
  };
  const table: string[][] = [['ID', 'RECLAIMABLE', 'SIZE', 'DESCRIPTION']];
  let reclaimable = 0;
  let total = 0;
  for (const r of rows) {
    table.push([`${r.id}${r.inUse ? '*' : ''}`, String(r.reclaimable), bytesSize(r.size), cut(r.description)]);
    total += r.size;
    if (r.reclaimable) reclaimable += r.size;
  }
  let out = tabwrite(table);
  out += tabwrite([
    [`${opts.summary}:`, bytesSize(reclaimable)],
    ['Total:', bytesSize(total)],
  ]);
  return out;
}
