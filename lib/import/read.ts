// Reading an image archive (`img load`): one pass over a tar stream, plain or
// compressed (gzip, zstd, bzip2, xz, as `docker load` accepts), never buffered
// whole. Every regular file goes straight into the content store's ingest while
// it streams — that is the bounded "spill" a docker archive needs, whose
// manifest.json may come after the layers it names — and is verified there:
// `blobs/sha256/<hex>` and `<hex>.json` entries against the digest their name
// states. Only the small index files (manifest.json, index.json, repositories,
// oci-layout) are kept in memory, capped. Symlinks and hard links (old
// `docker save` links identical layer.tar files) resolve to their target's blob.
// What the entries mean is load.ts's business.
import type { Readable, Writable } from 'node:stream';
import { decompressArchive, detectArchiveCompression } from '../archive/compression';
import { TarParser, type TarHeader } from '../archive/tar';
import type { ContentStore, Ingest, WriteResult } from '../content/store';
import type { Digest } from '../images/types';
import { ContentError, ImgError } from '../util/errors';

export const METADATA_FILES = new Set(['manifest.json', 'index.json', 'repositories', 'oci-layout']);
const MAX_METADATA = 16 << 20;
// Legacy per-layer metadata of old `docker save` archives: nothing reads it.
const LEGACY_LAYER_META = /^[0-9a-f]{64}\/(json|VERSION)$/;

export interface ArchiveContents {
  blobs: Map<string, WriteResult>; // entry name → stored blob
  metadata: Map<string, Buffer>; // METADATA_FILES present
  entries: number;
}

export interface ReadProgress {
  blob?(name: string, result: WriteResult): void;
}

// "./blobs/sha256/x" and "blobs//sha256/x" name the same entry.
export function entryName(name: string): string {
  return name
    .split('/')
    .filter((p) => p && p !== '.')
    .join('/');
}

// The digest an entry's name promises, when it promises one.
function digestFromName(name: string): Digest | undefined {
  const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name) ?? /^([0-9a-f]{64})\.json$/.exec(name);
  return m ? (`sha256:${m[1]}` as Digest) : undefined;
}

// Resolves "a/b/../c" relative to the link's directory; null when it leaves the archive.
function linkTarget(from: string, target: string, symlink: boolean): string | null {
  const base = symlink && !target.startsWith('/') ? from.split('/').slice(0, -1) : [];
  const out = [...base];
  for (const part of target.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') {
      if (!out.length) return null;
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

// Reads the first bytes to choose the decompressor, then yields everything.
async function* decompressed(source: Readable): AsyncGenerator<Buffer> {
  const iter = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 6) {
    const r = await iter.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    headLen += r.value.length;
  }
  const first = Buffer.concat(head);
  const compression = detectArchiveCompression(first);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    if (ended) return;
    for (;;) {
      const r = await iter.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (compression === 'none') {
    yield* rest();
    return;
  }
  const codec = decompressArchive(compression);
  const feeding = (async () => {
    try {
      for await (const chunk of rest()) if (!codec.write(chunk)) await new Promise((r) => codec.once('drain', r));
      codec.end();
    } catch (err) {
      codec.destroy(err as Error);
    }
  })();
  try {
    for await (const chunk of codec) yield chunk as Buffer;
  } catch (err) {
    throw new ContentError(`the ${compression} compression of the archive is corrupt or truncated`, {
      hint: 'the file was cut short or damaged; write the archive again',
      cause: err,
    });
  }
  await feeding;
}

function waitDrain(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      w.off('drain', onDrain);
      w.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    w.once('drain', onDrain);
    w.once('error', done);
  });
}

// `what` names the archive in messages ("image.tar", "stdin").
export async function readArchive(source: Readable, store: ContentStore, what: string, progress: ReadProgress = {}): Promise<ArchiveContents> {
  const blobs = new Map<string, WriteResult>();
  const metadata = new Map<string, Buffer>();
  const links: [string, string][] = [];
  let current: { name: string; ingest?: Ingest; meta?: Buffer[] } | null = null;
  let pending: Promise<void>[] = [];
  let failure: unknown = null;
  let entries = 0;
  // Errors this reader made (they already name the archive and the entry).
  const told = new WeakSet<object>();
  const tell = <E extends Error>(e: E): E => (told.add(e), e);

  const parser = new TarParser({
    entry(h: TarHeader) {
      entries++;
      const name = entryName(h.name);
      current = { name };
      if (h.type === 'symlink' || h.type === 'link') {
        const target = linkTarget(name, h.linkname, h.type === 'symlink');
        if (target !== null) links.push([name, target]);
        return;
      }
      if (h.type !== 'file' || LEGACY_LAYER_META.test(name)) return;
      if (METADATA_FILES.has(name)) {
        if (h.size > MAX_METADATA) {
          throw tell(new ContentError(`${what}: ${name} is ${h.size} bytes, more than an image archive's index can be`, {
            hint: 'this is not an image archive written by docker save, img save or skopeo',
          }));
        }
        current.meta = [];
        return;
      }
      current.ingest = store.ingest({ digest: digestFromName(name), size: h.size });
      current.ingest.stream.on('error', () => undefined); // reported by commit()
    },
    data(chunk: Buffer) {
      if (current?.meta) current.meta.push(Buffer.from(chunk));
      else current?.ingest?.stream.write(chunk);
    },
    endEntry() {
      const entry = current;
      current = null;
      if (!entry) return;
      if (entry.meta) metadata.set(entry.name, Buffer.concat(entry.meta));
      if (!entry.ingest) return;
      pending.push(
        entry.ingest.commit().then(
          (res) => {
            blobs.set(entry.name, res);
            progress.blob?.(entry.name, res);
          },
          (err) => {
            // A blob that is not what its name says; a full disk stays what it is.
            failure ??=
              err instanceof ContentError
                ? tell(
                    new ContentError(`${what}: entry ${entry.name} does not match its name: ${err.message}`, {
                      hint: 'the archive is corrupt; write it again (img save, docker save, skopeo copy)',
                      cause: err,
                    }),
                  )
                : err;
          },
        ),
      );
    },
  });

  const corrupt = (err: unknown): ImgError => {
    const where = (current as { name: string } | null)?.name;
    const first = entries === 0;
    return new ContentError(
      first
        ? `${what} is not a tar archive (${(err as Error).message})`
        : `${what} is corrupt or truncated${where ? ` in entry ${where}` : ` after ${entries} entries`}: ${(err as Error).message}`,
      {
        hint: first
          ? 'img load reads the tar archives docker save, img save and skopeo copy write (plain or gzip/zstd/bzip2/xz compressed)'
          : 'the file was cut short or damaged; write the archive again',
        cause: err,
      },
    );
  };

  const abortAll = async () => {
    const open = current as { ingest?: Ingest } | null;
    await open?.ingest?.abort();
    await Promise.allSettled(pending);
  };

  try {
    for await (const chunk of decompressed(source)) {
      parser.push(chunk);
      const open = current as { ingest?: Ingest } | null;
      if (open?.ingest?.stream.writableNeedDrain) await waitDrain(open.ingest.stream);
      if (pending.length > 8) {
        await Promise.all(pending);
        pending = [];
      }
      if (failure) throw failure;
      if (parser.done) break;
    }
    if (!parser.done) {
      const open = current as { name: string } | null;
      try {
        parser.end();
      } catch (err) {
        throw tell(new ContentError(`${what} is truncated: it ends ${open ? `inside entry ${open.name}` : `after ${entries} entries, in a tar header`}`, {
          hint: 'the file was cut short (a full disk, an interrupted copy); write the archive again',
          cause: err,
        }));
      }
    }
    await Promise.all(pending);
    if (failure) throw failure;
  } catch (err) {
    await abortAll();
    if (err === failure || told.has(err as object) || (err instanceof ImgError && !(err instanceof ContentError))) throw err;
    throw corrupt(err);
  }
  if (entries === 0) {
    throw new ContentError(`${what} is empty: no tar entries`, { hint: 'pass an archive written by docker save, img save or skopeo copy' });
  }
  for (const [name, target] of links) {
    const res = blobs.get(target);
    if (res) blobs.set(name, res);
    else if (metadata.has(target)) metadata.set(name, metadata.get(target)!);
  }
  return { blobs, metadata, entries };
}
