// `docker save` format (`img save`, `build -o type=docker`), loadable by
// `docker load` and by skopeo/podman's docker-archive: transport:
//   manifest.json   [{Config, RepoTags, Layers}] — one entry per image ID
//   repositories    {"repo": {"tag": "<top layer id>"}} for old loaders (img save only)
//   blobs/sha256/…  config, layers (stored as they are: docker load and
//                   containers/image decompress gzip/zstd layers themselves)
// plus oci-layout and index.json, so the same archive is also an OCI layout,
// as docker ≥ 25 writes it. manifest.json names one platform per image
// (docker's model has no indexes): the host's, else the index's first. An index
// whose platforms are all stored goes in whole (index.json names it, every
// platform's blobs are there), as containerd's archive exporter with all
// platforms; of a partly pulled index only the chosen platform goes in.
import type { Writable } from 'node:stream';
import type { ContentStore } from '../content/store';
import { ImgError } from '../util/errors';
import { familiarName, parseReference } from '../images/reference';
import type { Descriptor, Digest, ImageConfig, Manifest, Platform } from '../images/types';
import { localManifests, withConfigPlatforms } from '../images/walk';
import { hostPlatform, selectManifest } from '../images/platform';
import { isIndexMediaType } from '../images/types';
import { ANNOTATION_CREATED, completeLocally, indexEntry, mergeAnnotations, nameAnnotations, ociLayoutFiles, requireBlobs, writeLayout, type ArchiveOptions, type ExportImage } from './oci-layout';
import { TarWriter } from './tar';

export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

const blobName = (d: Digest) => `blobs/sha256/${d.slice(7)}`;

// The one manifest of `target` to export: the only local one, else the best
// match for `want` (default: the host) among the local ones.
export async function chooseManifest(store: ContentStore, target: Descriptor, what: string, want: Platform = hostPlatform()): Promise<Descriptor> {
  const local = await localManifests(store, target);
  if (local.length === 0) {
    throw new ImgError(`image ${what} has no manifest stored locally`, { hint: 'pull or build it again' });
  }
  if (local.length === 1) return local[0];
  const withPlatforms = await withConfigPlatforms(store, local);
  try {
    return selectManifest(withPlatforms, want);
  } catch (err) {
    if (err instanceof ImgError) {
      throw new ImgError(`image ${what}: ${err.message}`, {
        hint: `${err.hint ?? ''}; a docker archive holds one platform per image, --format oci keeps them all`.replace(/^; /, ''),
      });
    }
    throw err;
  }
}

// The manifest.json platform of a whole index: the best for `want` (the host), else the first.
async function firstChoice(store: ContentStore, index: Descriptor, want: Platform | undefined): Promise<Descriptor> {
  const manifests = await localManifests(store, index);
  try {
    return selectManifest(manifests, want);
  } catch {
    return manifests[0];
  }
}

// `repositories: false` (a build's -o type=docker): containerd's archive exporter,
// BuildKit's, writes no `repositories` file; docker save (img save) does.
export async function writeDockerArchive(
  store: ContentStore,
  images: ExportImage[],
  out: Writable,
  opts: ArchiveOptions & { platform?: Platform; repositories?: boolean } = {},
): Promise<void> {
  const tar = new TarWriter(out);
  try {
    const byConfig = new Map<Digest, DockerManifestEntry>();
    const repositories: Record<string, Record<string, string>> = {};
    const ociEntries: Descriptor[] = [];
    const roots: Descriptor[] = [];
    for (const img of images) {
      const ref = img.name ? parseReference(img.name) : undefined;
      const what = ref ? familiarName(ref) : img.target.digest;
      const whole = isIndexMediaType(img.target.mediaType) && (await completeLocally(store, img.target));
      const chosen = whole ? await firstChoice(store, img.target, opts.platform) : await chooseManifest(store, img.target, what, opts.platform);
      const manifest = await store.readJson<Manifest>(chosen.digest);
      const top = whole ? img.target : chosen;
      roots.push(top);
      const { platform: _p, ...bare } = top;
      const names = nameAnnotations(img.name, bare.annotations?.[ANNOTATION_CREATED] ? {} : opts);
      ociEntries.push(indexEntry(bare, mergeAnnotations(bare.annotations, names)));
      let entry = byConfig.get(manifest.config.digest);
      if (!entry) {
        entry = { Config: blobName(manifest.config.digest), RepoTags: null, Layers: manifest.layers.map((l) => blobName(l.digest)) };
        byConfig.set(manifest.config.digest, entry);
      }
      if (ref?.tag) {
        // RepoTags are familiar names with a tag ("busybox:latest"), as docker writes them.
        const tagged = familiarName({ domain: ref.domain, path: ref.path, tag: ref.tag });
        entry.RepoTags = [...(entry.RepoTags ?? []), tagged].filter((v, i, a) => a.indexOf(v) === i);
        const repo = familiarName({ domain: ref.domain, path: ref.path });
        const top = manifest.layers.at(-1);
        if (top) (repositories[repo] ??= {})[ref.tag] = top.digest.slice(7);
      }
    }
    const blobs = await requireBlobs(store, roots, images.map((i) => i.name ?? i.target.digest).join(', '));
    const files = ociLayoutFiles(ociEntries);
    files.push(['manifest.json', JSON.stringify([...byConfig.values()])]);
    if (opts.repositories !== false && Object.keys(repositories).length) files.push(['repositories', JSON.stringify(repositories)]);
    await writeLayout(tar, store, files, blobs);
  } catch (err) {
    tar.abort(err as Error);
    throw err;
  }
  await tar.finish();
}
