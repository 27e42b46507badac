// The registry backend: --cache-to type=registry,ref=R writes the layer blobs, the
// cache config and its envelope (envelope.ts) to R; --cache-from type=registry,ref=R
// (or a plain R) reads R's envelope — a cache manifest, or an image with an inline
// cache — and leaves the layers in the registry until a step needs them (BlobSource).
// Credentials and transport are img push/pull's (lib/registry).
import { Readable } from 'node:stream';
import { ContentStore } from '../content/store';
import { parseReference, type Reference } from '../images/reference';
import { isIndexMediaType, isManifestMediaType, type BlobSource, type Descriptor, type Digest } from '../images/types';
import { RegistryClient } from '../registry/client';
import { downloadBlobs } from '../registry/pull';
import { pushBlobs, type PushEvent } from '../registry/push';
import { recordSources } from '../registry/sources';
import type { Envelope } from './envelope';
import { readEnvelope } from './envelope';
import type { LoadedCache } from './import';

function cacheRef(input: string): Reference {
  const ref = parseReference(input);
  return ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' };
}

export interface RegistryCacheOptions {
  stateDir: string;
  insecure?: boolean;
}

// Where the blobs of `repo` can be fetched from, into the build's content store.
export function registrySource(client: RegistryClient, repo: string, store: ContentStore): BlobSource {
  return {
    registry: { host: client.host.name, repository: repo },
    fetch: async (desc: Descriptor) => {
      await downloadBlobs(client, repo, store, [desc]);
    },
  };
}

export async function loadRegistryCache(input: string, o: RegistryCacheOptions): Promise<LoadedCache> {
  const ref = cacheRef(input);
  const client = new RegistryClient(ref.domain, { insecure: o.insecure });
  const store = new ContentStore(o.stateDir);
  const what = `cache ${input}`;
  const top = await client.getManifest(ref.path, ref.digest ?? ref.tag!);
  const source = registrySource(client, ref.path, store);
  const read = async (desc: Descriptor): Promise<Buffer> => {
    // A platform's manifest in an image index (a multi-platform image's inline cache)
    // is a manifest: a registry serves it under /manifests/, not always under /blobs/.
    if (isIndexMediaType(desc.mediaType) || isManifestMediaType(desc.mediaType)) return (await client.getManifest(ref.path, desc.digest)).bytes;
    await source.fetch(desc);
    return store.readBytes(desc.digest);
  };
  const results = await readEnvelope(top.descriptor, top.bytes, read, what);
  return { what, results, source };
}

// Pushes the envelope: blobs first (skipped when present, mounted when their
// source is a repository of the same registry), then the config, then the
// manifest under the ref's tag.
export async function writeRegistryCache(
  input: string,
  env: Envelope,
  o: RegistryCacheOptions & { sources: ReadonlyMap<Digest, BlobSource>; onEvent?: (ev: PushEvent) => void },
): Promise<Digest> {
  const ref = cacheRef(input);
  const client = new RegistryClient(ref.domain, { insecure: o.insecure });
  const store = new ContentStore(o.stateDir);
  await pushBlobs(client, ref.path, env.layers, { stateDir: o.stateDir, store, sources: o.sources, onEvent: o.onEvent });
  await client.pushBlob(ref.path, env.config.desc, (start, end) => Readable.from([env.config.bytes.subarray(start, end + 1)]));
  const digest = await client.putManifest(ref.path, ref.digest ?? ref.tag!, env.manifest.desc.mediaType, env.manifest.bytes);
  await recordSources(o.stateDir, client.host.name, ref.path, env.layers.map((l) => l.digest));
  return digest;
}
