// Push: upload a stored image's blobs (skipping what the registry has, mounting what a
// sibling repository has), then its manifests (children by digest, the top one by tag).
// A blob not in the content store but with a BlobSource (a layer of a remote build
// cache) is mounted from its repository when that is on the same registry, and
// fetched only when the registry has to be sent its bytes.
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { ContentStore } from '../content/store';
import { formatPlatform, hostPlatform, selectManifest } from '../images/platform';
import { familiarName, formatReference, parseReference, type Reference } from '../images/reference';
import { ImageStore } from '../images/store';
import { isIndexMediaType, type BlobSource, type Descriptor, type Digest, type Index, type Manifest } from '../images/types';
import { NotFoundError, UsageError } from '../util/errors';
import { warn } from '../util/log';
import { RegistryClient, type PushBlobResult } from './client';
import { distributable } from './pull';
import { blobSources, recordSources } from './sources';

export const DEFAULT_PUSH_CONCURRENCY = 4;

export type PushEvent =
  | { type: 'blob-start'; digest: Digest; size: number }
  | { type: 'blob-done'; digest: Digest; size: number; result: PushBlobResult; from?: string }
  | { type: 'manifest'; digest: Digest; ref: string };

export interface PushOptions {
  stateDir: string;
  insecure?: boolean;
  concurrency?: number;
  onEvent?: (ev: PushEvent) => void;
  // Blobs that may be missing locally, and where to get them (see pushTarget).
  sources?: ReadonlyMap<Digest, BlobSource>;
}

export interface PushResult {
  name: string;
  reference: Reference;
  digest: Digest;
  // Bytes of the pushed manifest (or index), as docker prints after the digest.
  manifestSize: number;
  // Bytes of everything pushed or checked (manifests, configs, layers).
  size: number;
  uploaded: number;
  mounted: number;
  skipped: number;
}

export function pushName(input: string): { ref: Reference; name: string } {
  const parsed = parseReference(input);
  if (parsed.digest) {
    throw new UsageError(`cannot push by digest: ${input}`, { hint: 'push a tag: img push NAME[:TAG]' });
  }
  const ref = parsed.tag ? parsed : { ...parsed, tag: 'latest' };
  return { ref, name: formatReference(ref) };
}

export async function pushImage(input: string, opts: PushOptions): Promise<PushResult> {
  const { ref, name } = pushName(input);
  const record = await new ImageStore(opts.stateDir).get(name);
  if (!record) {
    throw new NotFoundError(`image ${familiarName(ref)} not found in ${opts.stateDir}`, {
      hint: `build it with \`img build -t ${familiarName(ref)} .\`, or name an existing image with \`img tag\` (see \`img ls\`)`,
    });
  }
  return pushTarget(input, record.target, opts);
}

// Pushes the manifest or index `target` (in the content store) as `input`.
export async function pushTarget(input: string, target: Descriptor, opts: PushOptions): Promise<PushResult> {
  const { ref, name } = pushName(input);
  const store = new ContentStore(opts.stateDir);
  const client = new RegistryClient(ref.domain, { insecure: opts.insecure });
  const emit = opts.onEvent ?? (() => undefined);
  let top = target;

  // Manifests to push, children before the index that names them.
  const manifests: { desc: Descriptor; doc: Manifest }[] = [];
  if (isIndexMediaType(top.mediaType)) {
    const index = await store.readJson<Index>(top.digest);
    const present = [];
    for (const m of index.manifests) if (await store.has(m.digest)) present.push(m);
    if (present.length === index.manifests.length) {
      for (const m of present) manifests.push({ desc: m, doc: await store.readJson<Manifest>(m.digest) });
    } else {
      // A pulled index keeps one platform locally; the registry would refuse the index
      // without the others, so push that platform's manifest under the tag.
      if (present.length === 0) throw store.missing(index.manifests[0]?.digest ?? top.digest);
      let chosen: Descriptor;
      try {
        chosen = selectManifest(present, hostPlatform());
      } catch {
        chosen = present[0];
      }
      warn(
        `${familiarName(ref)} is a multi-platform index of which only ${chosen.platform ? formatPlatform(chosen.platform) : chosen.digest} is stored locally; pushing that manifest alone`,
      );
      top = chosen;
    }
  }
  if (!isIndexMediaType(top.mediaType)) manifests.push({ desc: top, doc: await store.readJson<Manifest>(top.digest) });

  // Every blob once, with a check that we have it before talking to the registry.
  const blobs = new Map<Digest, Descriptor>();
  for (const { doc } of manifests) for (const b of [doc.config, ...distributable(doc.layers)]) blobs.set(b.digest, b);
  for (const b of blobs.values()) {
    const st = await store.stat(b.digest);
    if (!st && !opts.sources?.has(b.digest)) throw store.missing(b.digest);
  }

  const counts = await pushBlobs(client, ref.path, [...blobs.values()], { ...opts, store });
  for (const m of manifests) {
    if (m.desc.digest === top.digest) continue;
    await client.putManifest(ref.path, m.desc.digest, m.desc.mediaType, await store.readBytes(m.desc.digest));
    emit({ type: 'manifest', digest: m.desc.digest, ref: m.desc.digest });
  }
  const digest = await client.putManifest(ref.path, ref.tag!, top.mediaType, await store.readBytes(top.digest));
  emit({ type: 'manifest', digest, ref: ref.tag! });

  await recordSources(opts.stateDir, client.host.name, ref.path, [top.digest, ...manifests.map((m) => m.desc.digest), ...blobs.keys()]);
  const size = top.size + [...blobs.values()].reduce((a, b) => a + b.size, 0) + manifests.filter((m) => m.desc.digest !== top.digest).reduce((a, m) => a + m.desc.size, 0);
  return { name, reference: ref, digest, manifestSize: top.size, size, uploaded: counts.uploaded, mounted: counts.mounted, skipped: counts.exists };
}

// Puts blobs (from the content store, or fetched from their BlobSource when the
// registry has to be sent their bytes) into `repo`, `concurrency` at a time:
// skipped when present, mounted from a sibling repository when one is known.
export async function pushBlobs(
  client: RegistryClient,
  repo: string,
  blobs: Descriptor[],
  opts: PushOptions & { store: ContentStore },
): Promise<{ uploaded: number; mounted: number; exists: number }> {
  const { store } = opts;
  const emit = opts.onEvent ?? (() => undefined);
  const known = await blobSources(opts.stateDir, client.host.name);
  const counts = { uploaded: 0, mounted: 0, exists: 0 };
  let next = 0;
  let failed = false; // after one blob fails, no worker starts another
  const worker = async (): Promise<void> => {
    while (next < blobs.length && !failed) {
      const desc = blobs[next++];
      emit({ type: 'blob-start', digest: desc.digest, size: desc.size });
      const remote = opts.sources?.get(desc.digest);
      const local = remote ? await store.has(desc.digest) : true;
      const mountFrom = known(desc.digest).filter((r) => r !== repo);
      if (!local && remote?.registry?.host === client.host.name) mountFrom.unshift(remote.registry.repository);
      const path = store.blobPath(desc.digest);
      const open = (start: number, end: number): Readable =>
        local ? fs.createReadStream(path, { start, end, highWaterMark: 1 << 20 }) : fetchedThenRead(remote!, desc, path, start, end);
      const result = await client.pushBlob(repo, desc, open, { mountFrom }).catch((err: unknown) => {
        failed = true;
        throw err;
      });
      counts[result]++;
      emit({ type: 'blob-done', digest: desc.digest, size: desc.size, result, from: result === 'mounted' ? mountFrom[0] : undefined });
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? DEFAULT_PUSH_CONCURRENCY, blobs.length));
  await Promise.all(Array.from({ length: n }, worker));
  return counts;
}

// A blob read from the content store after its source put it there: opened
// only when the registry neither has the blob nor could mount it.
function fetchedThenRead(source: BlobSource, desc: Descriptor, path: string, start: number, end: number): Readable {
  return Readable.from(
    (async function* () {
      await source.fetch(desc);
      yield* fs.createReadStream(path, { start, end, highWaterMark: 1 << 20 });
    })(),
  );
}
