// Garbage collection of the content store: mark from the roots, sweep the rest,
// under the exclusive store lock (see LOCKING PROTOCOL in lock.ts).
//
// GC ROOTS
// - every image record's target (lib/images/store.ts), walked recursively
//   (index → manifests → config + layers; missing children are fine);
// - `extraRoots` passed by the caller;
// - build-cache roots: every `*.json` file under <state>/cache/roots/ holding
//   `{"digests": ["sha256:…", …]}`. The solver (one per cache record) and the
//   exporter's layer memo (one per layer blob) write them with registerCacheRoot()
//   below (atomically, while holding the shared lock, before the record that
//   names the blobs); `img prune` deletes them with the records. Roots that are
//   manifests or indexes are walked like image targets; other blobs (layers,
//   configs) are kept as is.
//
// Partial writes in ingest/ that no live process holds (dead writers) go too (leftovers.ts).
import type { Dirent } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isDigest } from '../content/digest';
import { ContentStore } from '../content/store';
import { ImageStore } from '../images/store';
import type { Descriptor, Digest } from '../images/types';
import { walk } from '../images/walk';
import { ContentError, ImgError, isErrno, UsageError } from '../util/errors';
import { writeFileAtomic } from '../util/fsutil';
import { debug } from '../util/log';
import { reclaimIngest, type IngestEntry } from './leftovers';
import { withStoreLock } from './lock';

function cacheRootFile(stateDir: string, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) throw new UsageError(`invalid cache root id "${id}"`, { hint: 'use letters, digits, ".", "_" and "-" (it names a file)' });
  return path.join(stateDir, 'cache', 'roots', `${id}.json`);
}

// Register blobs the build cache still needs (call while holding the shared lock,
// right after writing them). `id` is the cache record's key (file-name safe).
export async function registerCacheRoot(stateDir: string, id: string, digests: Digest[], what?: string): Promise<void> {
  await writeFileAtomic(cacheRootFile(stateDir, id), JSON.stringify({ digests }) + '\n', { what });
}

export async function removeCacheRoot(stateDir: string, id: string): Promise<void> {
  await fsp.rm(cacheRootFile(stateDir, id), { force: true });
}

// Digests registered by the build cache (see GC ROOTS above).
export async function cacheRoots(stateDir: string): Promise<Digest[]> {
  const dir = path.join(stateDir, 'cache', 'roots');
  const out: Digest[] = [];
  const visitDir = async (d: string): Promise<void> => {
    let ents: Dirent[];
    try {
      ents = await fsp.readdir(d, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await visitDir(p);
      else if (e.name.endsWith('.json')) {
        try {
          const doc = JSON.parse(await fsp.readFile(p, 'utf8')) as { digests?: unknown };
          if (Array.isArray(doc.digests)) for (const x of doc.digests) if (typeof x === 'string' && isDigest(x)) out.push(x);
        } catch (err) {
          // A root file being replaced or half-written by a crashed process: keep going,
          // but never sweep on a partial view of a readable-but-corrupt record.
          if (!isErrno(err, 'ENOENT')) debug(`gc: ignoring unreadable cache root ${p}: ${(err as Error).message}`);
        }
      }
    }
  };
  await visitDir(dir);
  return out;
}

// Descriptor for a bare digest root: media type unknown, so walk() sniffs small JSON blobs.
async function rootDescriptor(store: ContentStore, digest: Digest): Promise<Descriptor> {
  const st = await store.stat(digest);
  return { mediaType: '', digest, size: st?.size ?? 0 };
}

export async function collectGarbage(
  stateDir: string,
  extraRoots: Digest[] = [],
): Promise<{ removed: Digest[]; reclaimedBytes: number; ingest: IngestEntry[] }> {
  const content = new ContentStore(stateDir);
  const images = new ImageStore(stateDir);
  return withStoreLock(stateDir, 'exclusive', async () => {
    const roots: Descriptor[] = (await images.list()).map((r) => r.target);
    for (const d of [...extraRoots, ...(await cacheRoots(stateDir))]) roots.push(await rootDescriptor(content, d));
    let marked: Map<Digest, Descriptor>;
    try {
      marked = await walk(content, roots, undefined, { strict: true });
    } catch (err) {
      // Sweeping on a partial mark could delete layers a corrupt manifest still names.
      throw new ContentError(`garbage collection stopped, nothing was deleted: ${(err as Error).message}`, {
        hint: (err as ImgError).hint ?? 'fix or remove the damaged image, then retry',
        cause: err,
      });
    }
    const removed: Digest[] = [];
    let reclaimedBytes = 0;
    for await (const blob of content.list()) {
      if (marked.has(blob.digest)) continue;
      await content.delete(blob.digest);
      removed.push(blob.digest);
      reclaimedBytes += blob.size;
    }
    const ingest = await reclaimIngest(content.ingestDir);
    debug(`gc: ${marked.size} reachable, removed ${removed.length} blobs (${reclaimedBytes} bytes) and ${ingest.length} partial writes of dead processes`);
    return { removed, reclaimedBytes, ingest };
  });
}
