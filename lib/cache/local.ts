// The local backend: an OCI image layout directory, as buildx writes and reads it.
//   DIR/oci-layout             {"imageLayoutVersion":"1.0.0"}
//   DIR/index.json             OCI index; the cache envelope's descriptor annotated
//                              org.opencontainers.image.ref.name = the tag (default "latest")
//   DIR/blobs/sha256/<hex>     layers, cache config, envelope
// --cache-to type=local,dest=DIR adds (or replaces) the tag's entry and keeps other
// tags; blobs and index.json are written to temporary names and renamed, so a
// reader never sees half a file (two concurrent writers: the last index wins).
// --cache-from type=local,src=DIR[,tag=T|digest=D] reads it; layers are copied into
// the content store (digest-verified) only when a step needs them.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContentStore } from '../content/store';
import { MediaType, type BlobSource, type Descriptor, type Digest, type Index } from '../images/types';
import { ContentError, isErrno, NotFoundError } from '../util/errors';
import { makeDirs } from '../util/fsutil';
import type { Envelope } from './envelope';
import { readEnvelope } from './envelope';
import type { LoadedCache } from './import';

const REF_NAME = 'org.opencontainers.image.ref.name';

const blobPath = (dir: string, d: Digest): string => path.join(dir, 'blobs', 'sha256', d.slice('sha256:'.length));

async function readIndex(dir: string): Promise<Index | null> {
  try {
    const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as Index;
    return Array.isArray(index.manifests) ? index : null;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw new ContentError(`${dir}/index.json is not an OCI index: ${(err as Error).message}`, { hint: 'point src= at a directory written by --cache-to type=local' });
  }
}

async function writeAtomic(file: string, data: Buffer | NodeJS.ReadableStream): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, data as Buffer);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

async function readVerified(dir: string, desc: Descriptor): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(blobPath(dir, desc.digest));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(`blob ${desc.digest} is missing from ${dir}`, { hint: 'export the cache again (--cache-to type=local)' });
    throw err;
  }
  const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (got !== desc.digest) throw new ContentError(`blob ${desc.digest} in ${dir} has digest ${got}`, { hint: 'the cache directory is corrupt; export it again' });
  return bytes;
}

export function localSource(dir: string, store: ContentStore): BlobSource {
  return {
    fetch: async (desc: Descriptor) => {
      // The store verifies digest and size while it ingests.
      await store.write(fs.createReadStream(blobPath(dir, desc.digest)), { digest: desc.digest, size: desc.size });
    },
  };
}

export async function loadLocalCache(dir: string, o: { stateDir: string; tag?: string; digest?: string }): Promise<LoadedCache> {
  const what = `cache ${dir}`;
  const index = await readIndex(dir);
  if (!index) throw new NotFoundError(`${dir} holds no cache (no index.json)`, { hint: 'export one first with --cache-to type=local,dest=DIR' });
  const tag = o.tag ?? 'latest';
  const top = o.digest ? index.manifests.find((d) => d.digest === o.digest) : index.manifests.find((d) => d.annotations?.[REF_NAME] === tag);
  if (!top) throw new NotFoundError(`${dir} has no cache ${o.digest ? `with digest ${o.digest}` : `tagged ${tag}`}`, { hint: 'check tag= or digest=' });
  const source = localSource(dir, new ContentStore(o.stateDir));
  const results = await readEnvelope(top, await readVerified(dir, top), (d) => readVerified(dir, d), what);
  return { what, results, source };
}

// Writes the envelope into DIR: blobs that are not there yet (from the content
// store, fetched first from their source when the build only knew them remotely),
// the config and envelope, then index.json naming the envelope under `tag`.
export async function writeLocalCache(dir: string, tag: string, env: Envelope, o: { stateDir: string; sources: ReadonlyMap<Digest, BlobSource> }): Promise<void> {
  const store = new ContentStore(o.stateDir);
  await makeDirs(path.join(dir, 'blobs', 'sha256'), 'cache directory (--cache-to type=local,dest)');
  for (const desc of env.layers) {
    const file = blobPath(dir, desc.digest);
    if ((await fsp.stat(file).catch(() => null))?.size === desc.size) continue;
    if (!(await store.has(desc.digest))) {
      const source = o.sources.get(desc.digest);
      if (!source) throw store.missing(desc.digest);
      await source.fetch(desc);
    }
    await writeAtomic(file, store.createReadStream(desc.digest));
  }
  await writeAtomic(blobPath(dir, env.config.desc.digest), env.config.bytes);
  await writeAtomic(blobPath(dir, env.manifest.desc.digest), env.manifest.bytes);
  await writeAtomic(path.join(dir, 'oci-layout'), Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  const old = (await readIndex(dir))?.manifests ?? [];
  const entry: Descriptor = { ...env.manifest.desc, annotations: { [REF_NAME]: tag } };
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...old.filter((d) => d.annotations?.[REF_NAME] !== tag), entry] };
  await writeAtomic(path.join(dir, 'index.json'), Buffer.from(JSON.stringify(index)));
}
