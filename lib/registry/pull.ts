// Pull: resolve NAME[:TAG|@DIGEST] to a manifest (choosing a platform from an index),
// stream the config and layers into the content store in parallel with digest
// verification and retries, then name the image. An index is stored as is, with
// only the chosen platform's manifest and blobs below it.
import type { Readable, Writable } from 'node:stream';
import { ContentStore } from '../content/store';
import { withStoreLock } from '../state/lock';
import { compatiblePlatforms, formatPlatform, hostPlatform, matchPlatform, selectManifest } from '../images/platform';
import { formatReference, parseReference, type Reference } from '../images/reference';
import { ImageStore } from '../images/store';
import { descriptorProblem } from '../images/walk';
import {
  isIndexMediaType,
  isManifestMediaType,
  MediaType,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type Index,
  type Manifest,
  type Platform,
} from '../images/types';
import { ContentError, findError, HostError, isErrno, NotFoundError, RegistryError, TimeoutError, UnsupportedError } from '../util/errors';
import { debug, warn } from '../util/log';
import { RegistryClient, type RetryEvent } from './client';
import { recordSources } from './sources';
import { backoffMs, failureReason, isRetryableError, MAX_ATTEMPTS, sleep, stallHint, stallOf } from './transport';
import { checkDiffIds, describeLayer, isLayerMediaType, LayerVerifier, undecompressable, type LayerCheck, type LayerOrigin } from './verify';

export const DEFAULT_PULL_CONCURRENCY = 4;

export type PullEvent =
  | { type: 'resolved'; descriptor: Descriptor }
  // First event per blob; `config` marks the image config (renderers may hide it, as docker does).
  | { type: 'blob'; digest: Digest; size: number; state: 'waiting' | 'exists'; config?: boolean }
  | { type: 'progress'; digest: Digest; current: number; size: number }
  | { type: 'done'; digest: Digest; size: number }
  // An attempt failed and another starts (`attempt`: 2, 3, …); `digest` when it is a blob's.
  | { type: 'retry'; digest?: Digest; what: string; attempt: number; reason: string };

export interface PullOptions {
  stateDir: string;
  insecure?: boolean;
  // Wanted platform; default: the host's. `explicitPlatform` makes a mismatching single-platform image an error.
  platform?: Platform;
  explicitPlatform?: boolean;
  concurrency?: number;
  onEvent?: (ev: PullEvent) => void;
  // Resolve only: store the manifest and config, leave the layers (and the name)
  // for pullLayers, so a build that never unpacks the image never downloads them.
  skipLayers?: boolean;
  // The check a layer's bytes go through instead of the pull's own (LayerVerifier),
  // when this returns one: an unpack that applies the layer while it downloads.
  layerCheck?: (layer: Descriptor) => LayerCheck | undefined;
}

export interface PullResult {
  // Image store key, e.g. "docker.io/library/busybox:latest".
  name: string;
  reference: Reference;
  // What the name points to: the index or the manifest.
  target: Descriptor;
  // The platform manifest that was pulled.
  manifest: Descriptor;
  platform?: Platform;
  // Bytes of everything the image needs locally (index, manifest, config, layers).
  size: number;
  // Nothing was downloaded: everything was already stored.
  upToDate: boolean;
  downloaded: number;
  // false after a pull with skipLayers that found layers missing (see pullLayers).
  complete: boolean;
}

interface Plan {
  target: Descriptor;
  targetBytes?: Buffer;
  manifest: Descriptor;
  manifestBytes?: Buffer;
  doc: Manifest;
}

// Non-distributable ("foreign") layers live at their `urls`, not in registries; like docker,
// neither pull nor push transfers them.
export function isForeignLayer(d: Descriptor): boolean {
  return /\.foreign\.|nondistributable/.test(d.mediaType);
}

export function distributable(layers: Descriptor[]): Descriptor[] {
  return layers.filter((l) => !isForeignLayer(l));
}

export function pullName(ref: Reference): { ref: Reference; name: string } {
  const r = ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' };
  return { ref: r, name: formatReference(r) };
}

export async function pullImage(input: string, opts: PullOptions): Promise<PullResult> {
  const { ref, name } = pullName(parseReference(input));
  const store = new ContentStore(opts.stateDir);
  const images = new ImageStore(opts.stateDir);
  const emit = opts.onEvent ?? (() => undefined);
  const client = new RegistryClient(ref.domain, { insecure: opts.insecure, onRetry: retryEvents(emit) });
  const want = opts.platform ?? hostPlatform();

  // 1. What does the reference point at now? By digest: known. By tag, for a name we
  //    already have: a HEAD (cheap, and how the fast path notices a moved tag); for a new
  //    name straight to the GET, one round trip less.
  let target: Descriptor | undefined;
  let targetBytes: Buffer | undefined;
  if (ref.digest) {
    target = await localDescriptor(store, ref.digest);
  } else if (await images.get(name)) {
    target = await client.headManifest(ref.path, ref.tag!);
  }
  if (!target) {
    const got = await client.getManifest(ref.path, ref.digest ?? ref.tag!);
    target = got.descriptor;
    targetBytes = got.bytes;
  }
  emit({ type: 'resolved', descriptor: target });

  // 2. Fast path: everything already here → just (re)name it.
  const local = await localPlan(store, target, want);
  if (local) {
    await checkPlatform(store, local, want, opts.explicitPlatform, name);
    await withStoreLock(opts.stateDir, 'shared', () => images.put(name, target!));
    return { name, reference: ref, target, manifest: local.manifest, platform: local.manifest.platform ?? want, size: planSize(local), upToDate: true, downloaded: 0, complete: true };
  }

  // 3. Fetch the manifests we lack (small, no lock needed yet).
  const plan = await remotePlan(client, ref.path, store, target, targetBytes, want, name);

  let downloaded = 0;
  await withStoreLock(opts.stateDir, 'shared', async () => {
    const image = { name, layers: plan.doc.layers };
    const fetch = async (blobs: Descriptor[]): Promise<void> => {
      const got = await fetchBlobs(client, ref.path, store, blobs, opts, emit, image);
      downloaded += got.downloaded;
      // The config describes the layers just downloaded, or nothing is named.
      if (got.diffIds.size) checkDiffIds(name, plan.doc.layers, await store.readJson<ImageConfig>(plan.doc.config.digest), got.diffIds);
    };
    if (opts.skipLayers) {
      await fetch([plan.doc.config]);
      await checkPlatform(store, plan, want, opts.explicitPlatform, name);
    } else if (opts.explicitPlatform && !isIndexMediaType(plan.target.mediaType)) {
      // The config says whether a single-platform image is the one asked for: fetch it
      // first so a mismatch fails before the layers are downloaded.
      await fetch([plan.doc.config]);
      await checkPlatform(store, plan, want, true, name);
      await fetch(distributable(plan.doc.layers));
    } else {
      await fetch([plan.doc.config, ...distributable(plan.doc.layers)]);
      await checkPlatform(store, plan, want, false, name);
    }
    // Parents after children, so a stored manifest always finds its blobs.
    if (plan.manifestBytes) await store.writeBytes(plan.manifestBytes, { digest: plan.manifest.digest, size: plan.manifest.size });
    if (plan.targetBytes && plan.target.digest !== plan.manifest.digest) {
      await store.writeBytes(plan.targetBytes, { digest: plan.target.digest, size: plan.target.size });
    }
    if (!opts.skipLayers) await images.put(name, plan.target);
  });
  const digests = [plan.target.digest, plan.manifest.digest, plan.doc.config.digest, ...plan.doc.layers.map((l) => l.digest)];
  await recordSources(opts.stateDir, client.host.name, ref.path, digests);
  return {
    name,
    reference: ref,
    target: plan.target,
    manifest: plan.manifest,
    platform: plan.manifest.platform ?? want,
    size: planSize(plan),
    upToDate: false,
    downloaded,
    complete: !opts.skipLayers,
  };
}

// The layers a pull with skipLayers left behind, by the manifest digest it
// resolved (a tag moved since is not followed), then the name.
export async function pullLayers(res: PullResult, opts: PullOptions): Promise<number> {
  if (res.complete) return 0;
  const store = new ContentStore(opts.stateDir);
  const client = new RegistryClient(res.reference.domain, { insecure: opts.insecure, onRetry: retryEvents(opts.onEvent ?? (() => undefined)) });
  const doc = await store.readJson<Manifest>(res.manifest.digest);
  let downloaded = 0;
  await withStoreLock(opts.stateDir, 'shared', async () => {
    const got = await fetchBlobs(client, res.reference.path, store, distributable(doc.layers), opts, opts.onEvent ?? (() => undefined), { name: res.name, layers: doc.layers });
    downloaded = got.downloaded;
    checkDiffIds(res.name, doc.layers, await store.readJson<ImageConfig>(doc.config.digest), got.diffIds);
    await new ImageStore(opts.stateDir).put(res.name, res.target);
  });
  await recordSources(opts.stateDir, client.host.name, res.reference.path, [res.target.digest, res.manifest.digest, doc.config.digest, ...doc.layers.map((l) => l.digest)]);
  res.complete = true;
  return downloaded;
}

// The client's retries as pull events (progress shows them: a stalled registry must not look like a hang).
function retryEvents(emit: (ev: PullEvent) => void): (ev: RetryEvent) => void {
  return ({ ctx, attempt, reason }) =>
    emit({ type: 'retry', digest: ctx.digest as Digest | undefined, what: `${ctx.what ?? 'request'} from ${ctx.registry}${ctx.repository ? `/${ctx.repository}` : ''}`, attempt, reason });
}

// A descriptor for a digest already in the store (pull by digest needs no network then).
async function localDescriptor(store: ContentStore, digest: Digest): Promise<Descriptor | undefined> {
  const st = await store.stat(digest);
  if (!st || st.size > 4 << 20) return undefined;
  try {
    const doc = await store.readJson<{ mediaType?: string; manifests?: unknown; config?: unknown }>(digest);
    const mediaType = doc.mediaType ?? (Array.isArray(doc.manifests) ? MediaType.OciIndex : doc.config ? MediaType.OciManifest : undefined);
    if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) return undefined;
    return { mediaType: mediaType!, digest, size: st.size };
  } catch {
    return undefined;
  }
}

// The complete local plan for target, or undefined if any needed blob is missing.
async function localPlan(store: ContentStore, target: Descriptor, want: Platform): Promise<Plan | undefined> {
  if (!(await store.has(target.digest))) return undefined;
  let manifest = target;
  try {
    if (isIndexMediaType(target.mediaType)) {
      const index = await store.readJson<Index>(target.digest);
      manifest = selectManifest(index.manifests, want);
      if (!(await store.has(manifest.digest))) return undefined;
    }
    const doc = await store.readJson<Manifest>(manifest.digest);
    for (const d of [doc.config, ...distributable(doc.layers)]) {
      const st = await store.stat(d.digest);
      if (!st || st.size !== d.size) return undefined;
    }
    return { target, manifest, doc };
  } catch {
    return undefined; // e.g. no platform match locally: let the remote path report it
  }
}

async function remotePlan(
  client: RegistryClient,
  repo: string,
  store: ContentStore,
  target: Descriptor,
  targetBytes: Buffer | undefined,
  want: Platform,
  name: string,
): Promise<Plan> {
  const bytesOf = async (d: Descriptor): Promise<Buffer | undefined> => {
    if (await store.has(d.digest)) return undefined; // stored already
    const got = await client.getManifest(repo, d.digest);
    return got.bytes;
  };
  const readDoc = async <T>(d: Descriptor, bytes: Buffer | undefined): Promise<T> =>
    bytes ? (JSON.parse(bytes.toString('utf8')) as T) : store.readJson<T>(d.digest);

  if (!targetBytes) targetBytes = await bytesOf(target);
  else if (await store.has(target.digest)) targetBytes = undefined;
  let manifest = target;
  let manifestBytes = targetBytes;
  if (isIndexMediaType(target.mediaType)) {
    const index = await readDoc<Index>(target, targetBytes);
    if (!Array.isArray(index?.manifests)) throw new ContentError(`index ${target.digest} from ${client.host.name}/${repo} has no manifests`, { hint: 'the image is broken in the registry' });
    checkDescriptors(`index ${target.digest} of image ${name}`, index.manifests.map((d, i) => [`entry ${i + 1} of its manifests`, d]));
    manifest = selectManifest(index.manifests, want, name);
    if (isIndexMediaType(manifest.mediaType)) {
      throw new UnsupportedError(`index ${target.digest} from ${client.host.name}/${repo} nests another index for ${formatPlatform(want)}`, { hint: 'nested indexes are not supported; pull the inner index by digest' });
    }
    manifestBytes = await bytesOf(manifest);
  }
  const doc = await readDoc<Manifest>(manifest, manifestBytes);
  if (!doc?.config?.digest || !Array.isArray(doc.layers)) {
    throw new ContentError(`manifest ${manifest.digest} from ${client.host.name}/${repo} lacks a config or layers`, { hint: 'this is not a container image' });
  }
  checkDescriptors(`manifest ${manifest.digest} of image ${name}`, [['its config', doc.config], ...doc.layers.map((l, i): [string, unknown] => [`layer ${i + 1} of ${doc.layers.length}`, l])]);
  return { target, targetBytes, manifest, manifestBytes, doc };
}

// A manifest or index from a registry names its children with descriptors; one that
// is not usable (null, no digest, another algorithm, no size) fails the pull naming it.
function checkDescriptors(what: string, entries: [string, unknown][]): void {
  for (const [which, d] of entries) {
    const problem = descriptorProblem(d);
    if (problem) throw new ContentError(`${what}: ${which} ${problem}`, { hint: 'the image is malformed in the registry (or uses a digest img does not support); nothing was stored — push it again with a current client' });
  }
}

async function checkPlatform(store: ContentStore, plan: Plan, want: Platform, explicit: boolean | undefined, name: string): Promise<void> {
  if (isIndexMediaType(plan.target.mediaType)) return; // chosen by platform already
  let config: ImageConfig;
  try {
    config = await store.readJson<ImageConfig>(plan.doc.config.digest);
  } catch {
    return;
  }
  if (!config.architecture || !config.os) return;
  const actual: Platform = { os: config.os, architecture: config.architecture, variant: config.variant };
  // What `want` runs is fine (containerd's matcher: amd64 takes a 386 image).
  if (compatiblePlatforms(want).some((p) => matchPlatform(p, actual))) return;
  const msg = `image ${name} is for ${formatPlatform(actual)}, not ${formatPlatform(want)}`;
  if (explicit) throw new NotFoundError(msg, { hint: `pull it without --platform, or with --platform ${formatPlatform(actual)}` });
  warn(`${msg} (the requested image's platform does not match the detected host platform)`);
}

function planSize(plan: Plan): number {
  let total = plan.manifest.size + plan.doc.config.size + plan.doc.layers.reduce((a, l) => a + l.size, 0);
  if (plan.target.digest !== plan.manifest.digest) total += plan.target.size;
  return total;
}

// Errors of the local disk are final; anything while streaming the body (truncation,
// corruption detected by the digest, a reset connection) is worth another attempt.
function isLocalFsError(err: unknown): boolean {
  return err instanceof HostError || ['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EMFILE', 'ENFILE'].some((c) => isErrno(err, c));
}

// What fetchBlobs learns: bytes downloaded and the diff_id of every layer it downloaded.
interface Fetched {
  downloaded: number;
  diffIds: Map<Digest, Digest>;
}

// Download blobs not yet stored, `concurrency` at a time; layers are checked to
// decompress as they arrive (verify.ts). `image` names the image in messages.
async function fetchBlobs(
  client: RegistryClient,
  repo: string,
  store: ContentStore,
  blobs: Descriptor[],
  opts: PullOptions,
  emit: (ev: PullEvent) => void,
  image?: { name: string; layers: Descriptor[] },
): Promise<Fetched> {
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  const isConfig = (d: Descriptor): boolean => d.mediaType === MediaType.DockerConfig || /config/.test(d.mediaType);
  const pending: Descriptor[] = [];
  for (const b of unique) {
    const st = await store.stat(b.digest);
    if (st && st.size === b.size) emit({ type: 'blob', digest: b.digest, size: b.size, state: 'exists', config: isConfig(b) });
    else {
      pending.push(b);
      emit({ type: 'blob', digest: b.digest, size: b.size, state: 'waiting', config: isConfig(b) });
    }
  }
  const fetched: Fetched = { downloaded: 0, diffIds: new Map() };
  const originOf = (d: Descriptor): LayerOrigin | undefined => {
    const i = image ? image.layers.findIndex((l) => l.digest === d.digest) : -1;
    return i < 0 ? undefined : { image: image!.name, position: i + 1, total: image!.layers.length };
  };
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < pending.length && !failed) {
      const desc = pending[next++];
      try {
        const diffId = await fetchBlob(client, repo, store, desc, emit, originOf(desc), opts.layerCheck);
        if (diffId) fetched.diffIds.set(desc.digest, diffId);
        fetched.downloaded += desc.size;
      } catch (err) {
        failed = true; // no new downloads; those under way finish, so nothing is still writing when pull fails
        throw err;
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? DEFAULT_PULL_CONCURRENCY, pending.length));
  const settled = await Promise.allSettled(Array.from({ length: n }, worker));
  const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  return fetched;
}

// Blobs of `repo` not yet in the store, verified, resumed and retried as a pull
// fetches them (for callers that know the descriptors: a build cache's layers).
// Returns the bytes downloaded.
export async function downloadBlobs(
  client: RegistryClient,
  repo: string,
  store: ContentStore,
  blobs: Descriptor[],
  opts: { concurrency?: number; onEvent?: (ev: PullEvent) => void } = {},
): Promise<number> {
  const fetched = await fetchBlobs(client, repo, store, blobs, { stateDir: store.stateDir, concurrency: opts.concurrency }, opts.onEvent ?? (() => undefined));
  return fetched.downloaded;
}

// One blob into one ingest. A connection cut mid-body resumes where it stopped (Range
// request; the ingest keeps hashing across the pieces, the layer check keeps
// decompressing); content that fails verification (digest or size) starts over in a fresh
// ingest. Both count as attempts. A layer whose bytes match their digest but do not
// decompress is final (the registry holds it so). Returns a layer's diff_id.
async function fetchBlob(
  client: RegistryClient,
  repo: string,
  store: ContentStore,
  desc: Descriptor,
  emit: (ev: PullEvent) => void,
  origin?: LayerOrigin,
  layerCheck?: (layer: Descriptor) => LayerCheck | undefined,
): Promise<Digest | undefined> {
  const expected = { digest: desc.digest, size: desc.size };
  const source = `${client.host.name}/${repo}`;
  const layer = isLayerMediaType(desc.mediaType);
  const newCheck = (): LayerCheck | null => (layer ? (layerCheck?.(desc) ?? new LayerVerifier()) : null);
  let ingest = store.ingest(expected);
  let verifier = newCheck();
  const restart = async (): Promise<void> => {
    await ingest.abort();
    verifier?.destroy();
    ingest = store.ingest(expected);
    verifier = newCheck();
    received = 0;
  };
  let received = 0; // bytes handed to the ingest
  let lastReport = 0;
  const onChunk = (n: number): void => {
    received += n;
    const now = Date.now();
    if (now - lastReport >= 100) {
      lastReport = now;
      emit({ type: 'progress', digest: desc.digest, current: received, size: desc.size });
    }
  };
  const giveUp = async (err: unknown): Promise<never> => {
    await ingest.abort();
    verifier?.destroy();
    throw err;
  };
  let last: unknown;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt - 1));
    // HTTP-level failures (404, 401, unreachable) were already retried where sensible and are final.
    let res;
    try {
      res = await client.getBlob(repo, desc.digest, received);
    } catch (err) {
      return giveUp(err);
    }
    // The registry ignored the Range: take the whole body again.
    if (received > 0 && res.status !== 206) await restart();
    let stage: 'body' | 'verify' = 'body';
    let damaged: ContentError | undefined;
    let diffId: Digest | undefined;
    try {
      await pump(res.body, verifier ? [ingest.stream, verifier] : [ingest.stream], onChunk).catch((err: NodeJS.ErrnoException) => {
        // Cut short of a Content-Length larger than the blob, with every byte of it here:
        // the digest decides.
        if (!(received === desc.size && err.code === 'ECONNRESET')) throw err;
      });
      stage = 'verify';
      // Verifies size and digest, then that a layer decompresses; a mismatch stores nothing.
      await ingest.commit(async () => {
        if (!verifier) return;
        try {
          diffId = await verifier.result();
        } catch (err) {
          if (isLocalFsError(err)) throw err; // an unpacking check's disk
          throw (damaged = undecompressable(describeLayer(desc, origin, source), err));
        }
      });
      emit({ type: 'done', digest: desc.digest, size: desc.size });
      return diffId;
    } catch (err) {
      // The body errors when destroyed early; nobody listens any more.
      res.body.on('error', () => undefined).destroy();
      if (damaged || isLocalFsError(err)) return giveUp(err);
      // Node says "aborted" for a body cut short of its Content-Length: say how far it got.
      last =
        stage === 'body' && (err as NodeJS.ErrnoException).code === 'ECONNRESET'
          ? Object.assign(new Error(`the connection closed after ${received} of ${desc.size} bytes`), { code: 'ECONNRESET', cause: err })
          : err;
      // A cut connection keeps what arrived; anything else (bad content, an ingest that
      // failed) starts over.
      if (stage === 'verify' || !isRetryableError(err) || ingest.stream.destroyed || ingest.stream.errored) await restart();
      const reason = failureReason(last);
      debug(`blob ${desc.digest} from ${source}, attempt ${attempt + 1}: ${reason}${received ? ` (resuming at byte ${received})` : ''}`);
      if (attempt < MAX_ATTEMPTS - 1) emit({ type: 'retry', digest: desc.digest, what: `blob ${desc.digest} from ${source}`, attempt: attempt + 2, reason });
    }
  }
  await ingest.abort();
  verifier?.destroy();
  const reason = failureReason(last);
  const message = `blob ${desc.digest} from ${source} failed after ${MAX_ATTEMPTS} attempts: ${reason}`;
  // Stalled every time: a timeout; corrupt every time (digest or size mismatch): a
  // content error; cut off every time: a registry one.
  const stall = stallOf(last);
  if (stall) throw new TimeoutError(message, { hint: `${stallHint(stall)}; nothing was stored`, cause: last });
  const Failure = findError(last, ContentError) ? ContentError : RegistryError;
  throw new Failure(message, {
    hint: 'the registry (or a proxy in between) keeps sending truncated or corrupt data; nothing was stored — check the registry and retry',
    cause: last,
  });
}

// Copy a response body into the ingest (and the layer check) without ending them (a
// resumed download appends to the same ingest), with backpressure: the body waits for
// the slowest sink; resolves at the end of the body.
function pump(body: Readable, sinks: Writable[], onChunk: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const full = new Set<Writable>(); // sinks waiting to drain
    const drains = sinks.map((sink) => (): void => {
      if (full.delete(sink) && full.size === 0) body.resume();
    });
    const cleanup = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      sinks.forEach((sink, i) => {
        sink.off('drain', drains[i]);
        sink.off('error', onError);
      });
    };
    const onData = (chunk: Buffer): void => {
      onChunk(chunk.length);
      for (const sink of sinks) if (!sink.write(chunk)) full.add(sink);
      if (full.size > 0) body.pause();
    };
    const onEnd = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    // A body destroyed without 'end' or 'error' was cut short.
    const onClose = (): void => {
      cleanup();
      reject(Object.assign(new Error('connection closed before the end of the body'), { code: 'ECONNRESET' }));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    sinks.forEach((sink, i) => {
      sink.on('drain', drains[i]);
      sink.once('error', onError);
    });
  });
}
