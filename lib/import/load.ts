// `img load`: image archives into the store, as `docker load` reads them.
//   OCI layout (index.json + blobs/, skopeo oci-archive:, img save --format oci):
//     each index.json entry is an image, kept as it is (a multi-platform index
//     stays an index); its name is io.containerd.image.name, else a
//     org.opencontainers.image.ref.name that is a whole reference.
//   docker archive (manifest.json, docker save, skopeo docker-archive:): each
//     entry's Config and Layers become a schema2 manifest written here; each
//     RepoTags name points at it. Archives carrying both (docker ≥ 25 and
//     img save) are read as the OCI layout: its manifests keep their digests.
// An image without a name is kept under its ID and told as "Loaded image ID".
// Blobs are written under the shared store lock until the records naming them
// are (state/lock.ts), so a concurrent `img prune` cannot take them.
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { ContentStore, type WriteResult } from '../content/store';
import { imageId } from '../images/inspect';
import { familiarName, formatReference, parseReference } from '../images/reference';
import { ImageStore } from '../images/store';
import { MediaType, isIndexMediaType, isManifestMediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest } from '../images/types';
import { walk } from '../images/walk';
import { withStoreLock } from '../state/lock';
import { detectCompression } from '../archive/compression';
import { ContentError, NotFoundError, UsageError, isErrno } from '../util/errors';
import { readArchive, type ArchiveContents } from './read';

const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

export interface LoadOptions {
  input?: string; // a file; stdin when absent or '-'
  stdin?: Readable; // for tests
  // Progress lines (a stored blob); the caller decides where they go, or drops them (-q).
  progress?: (line: string) => void;
}

export interface LoadedImage {
  name?: string; // normalized reference; absent when the archive names none
  id: Digest; // what inspect calls Id
  target: Descriptor;
}

export interface LoadResult {
  images: LoadedImage[];
  // docker load's lines: "Loaded image: busybox:latest", "Loaded image ID: sha256:…".
  lines: string[];
}

interface DockerManifestEntry {
  Config?: string;
  RepoTags?: string[] | null;
  Layers?: string[];
}

function parseJson<T>(buf: Buffer, name: string, what: string): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw new ContentError(`${what}: ${name} is not valid JSON`, { hint: 'the archive is corrupt; write it again', cause: err });
  }
}

async function openInput(opts: LoadOptions): Promise<{ source: Readable; what: string }> {
  if (!opts.input || opts.input === '-') {
    const stdin = opts.stdin ?? process.stdin;
    if ((stdin as NodeJS.ReadStream).isTTY) {
      throw new UsageError('requested load from stdin, but stdin is empty (a terminal)', {
        hint: 'pass the archive with -i FILE, or redirect it: img load < image.tar',
      });
    }
    return { source: stdin, what: 'stdin' };
  }
  const file = opts.input;
  try {
    const fh = await fs.promises.open(file, 'r');
    if ((await fh.stat()).isDirectory()) {
      await fh.close();
      throw new UsageError(`${file} is a directory, not an image archive`, { hint: 'pass a tar file written by docker save, img save or skopeo copy' });
    }
    return { source: fh.createReadStream({ highWaterMark: 1 << 20 }), what: file };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(`no such file: ${file}`, { hint: 'check the path given to -i/--input', cause: err });
    throw err;
  }
}

// The name an index.json entry gives, normalized; undefined when it gives none.
function ociName(desc: Descriptor): string | undefined {
  const full = desc.annotations?.[ANNOTATION_IMAGE_NAME];
  const refName = desc.annotations?.[ANNOTATION_REF_NAME];
  for (const candidate of [full, refName]) {
    // A bare tag ("latest", "1.0") names no repository: such an image loads untagged, as in docker.
    if (!candidate || !/[:/]/.test(candidate)) continue;
    try {
      return formatReference(parseReference(candidate));
    } catch {
      // not a reference: try the next
    }
  }
  return undefined;
}

function blobOf(contents: ArchiveContents, name: string, what: string, role: string): WriteResult {
  const got = contents.blobs.get(name.replace(/^\.?\//, ''));
  if (!got) throw new ContentError(`${what}: ${role} ${name} is missing from the archive`, { hint: 'the archive is incomplete; write it again' });
  return got;
}

// Every blob below the index.json entries must be in the store now (an index
// may lack some platforms' manifests, as a partly pulled index does).
async function checkComplete(store: ContentStore, roots: Descriptor[], what: string): Promise<void> {
  const parents = new Map<Digest, Descriptor>();
  const missing: Descriptor[] = [];
  await walk(store, roots, async (d, present) => {
    if (present) {
      if (isIndexMediaType(d.mediaType) || isManifestMediaType(d.mediaType)) {
        const doc = await store.readJson<Partial<Index & Manifest>>(d.digest);
        for (const c of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) parents.set(c.digest, d);
      }
      return;
    }
    const parent = parents.get(d.digest);
    if (parent && isIndexMediaType(parent.mediaType) && isManifestMediaType(d.mediaType)) return;
    missing.push(d);
  });
  if (missing.length) {
    const first = missing[0];
    throw new ContentError(`${what}: blob ${first.digest} (${first.mediaType}) is missing from the archive${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`, {
      hint: 'the archive is incomplete; write it again',
    });
  }
}

async function fromOciLayout(store: ContentStore, contents: ArchiveContents, what: string): Promise<{ name?: string; target: Descriptor }[]> {
  const index = parseJson<Partial<Index>>(contents.metadata.get('index.json')!, 'index.json', what);
  if (!Array.isArray(index.manifests)) throw new ContentError(`${what}: index.json has no manifests list`, { hint: 'the archive is corrupt; write it again' });
  const out: { name?: string; target: Descriptor }[] = [];
  for (const entry of index.manifests) {
    if (!entry || typeof entry.digest !== 'string') throw new ContentError(`${what}: index.json has an entry without a digest`, { hint: 'the archive is corrupt' });
    const { annotations: _a, ...target } = entry;
    out.push({ name: ociName(entry), target });
  }
  await checkComplete(
    store,
    out.map((o) => o.target),
    what,
  );
  return out;
}

async function fromDockerManifest(store: ContentStore, contents: ArchiveContents, what: string): Promise<{ name?: string; target: Descriptor }[]> {
  const entries = parseJson<DockerManifestEntry[]>(contents.metadata.get('manifest.json')!, 'manifest.json', what);
  if (!Array.isArray(entries)) throw new ContentError(`${what}: manifest.json is not a list`, { hint: 'the archive is corrupt; write it again' });
  const out: { name?: string; target: Descriptor }[] = [];
  for (const [i, entry] of entries.entries()) {
    if (!entry?.Config || !Array.isArray(entry.Layers)) {
      throw new ContentError(`${what}: manifest.json entry ${i} lacks Config or Layers`, { hint: 'the archive is corrupt; write it again' });
    }
    const configBlob = blobOf(contents, entry.Config, what, 'config');
    const config = await store.readJson<ImageConfig>(configBlob.digest);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== entry.Layers.length) {
      throw new ContentError(`${what}: ${entry.Config} lists ${diffIds.length} layers, manifest.json ${entry.Layers.length}`, {
        hint: 'the archive is corrupt; write it again',
      });
    }
    let oci = false;
    const layers: Descriptor[] = [];
    for (const [j, name] of entry.Layers.entries()) {
      const blob = blobOf(contents, name, what, 'layer');
      const compression = detectCompression(await headOf(store, blob.digest));
      // An uncompressed layer's digest is its diff ID: the config and the bytes must agree.
      if (compression === 'none' && blob.digest !== diffIds[j]) {
        throw new ContentError(`${what}: layer ${name} has digest ${blob.digest}, but its config names ${diffIds[j]}`, {
          hint: 'the archive is corrupt; write it again',
        });
      }
      if (compression === 'zstd') oci = true;
      const mediaType = compression === 'gzip' ? MediaType.DockerLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.DockerLayer;
      layers.push({ mediaType, digest: blob.digest, size: blob.size });
    }
    if (oci) for (const l of layers) l.mediaType = l.mediaType === MediaType.DockerLayerGzip ? MediaType.OciLayerGzip : l.mediaType === MediaType.DockerLayer ? MediaType.OciLayer : l.mediaType;
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: oci ? MediaType.OciManifest : MediaType.DockerManifest,
      config: { mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: configBlob.digest, size: configBlob.size },
      layers,
    };
    const written = await store.writeBytes(JSON.stringify(manifest));
    const target: Descriptor = { mediaType: manifest.mediaType!, digest: written.digest, size: written.size };
    const tags = (entry.RepoTags ?? []).filter((t) => typeof t === 'string' && t);
    if (!tags.length) out.push({ target });
    for (const tag of tags) {
      let name: string;
      try {
        name = formatReference(parseReference(tag));
      } catch (err) {
        throw new ContentError(`${what}: manifest.json names an invalid tag "${tag}"`, { hint: 'the archive is corrupt; write it again', cause: err });
      }
      out.push({ name, target });
    }
  }
  return out;
}

async function headOf(store: ContentStore, digest: Digest): Promise<Buffer> {
  const fh = await fs.promises.open(store.blobPath(digest), 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function loadImages(stateDir: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const { source, what } = await openInput(opts);
  const store = new ContentStore(stateDir);
  const records = new ImageStore(stateDir);
  return withStoreLock(stateDir, 'shared', async () => {
    const contents = await readArchive(source, store, what, {
      blob: (name, res) => opts.progress?.(`Loading ${name} ${res.digest.slice(7, 19)} (${res.size} bytes)`),
    });
    let found: { name?: string; target: Descriptor }[];
    const index = contents.metadata.get('index.json');
    if (index && (parseJson<Partial<Index>>(index, 'index.json', what).manifests ?? []).length) found = await fromOciLayout(store, contents, what);
    else if (contents.metadata.has('manifest.json')) found = await fromDockerManifest(store, contents, what);
    else {
      throw new ContentError(`${what} holds no image: it has neither manifest.json nor index.json (${contents.entries} entries read)`, {
        hint: 'img load reads docker save / img save / skopeo docker-archive and oci-archive tars; a root filesystem tar is not an image',
      });
    }
    const images: LoadedImage[] = [];
    const lines: string[] = [];
    for (const f of found) {
      const id = await imageId(store, f.target);
      // An unnamed image is kept under its ID, so it outlives the next prune and inspect finds it.
      await records.put(f.name ?? id, f.target);
      images.push({ name: f.name, id, target: f.target });
      lines.push(f.name ? `Loaded image: ${familiarName(parseReference(f.name))}` : `Loaded image ID: ${id}`);
    }
    return { images, lines: lines.filter((l, i) => lines.indexOf(l) === i) };
  });
}
