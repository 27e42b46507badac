// The image source op (FROM, COPY --from=image): resolves a reference to a
// manifest — the local store first unless --pull, then the registry — and
// unpacks its layers into a chain of snapshots keyed by chainID.
// Its cache key is the manifest digest the reference resolved to. An image of
// one platform serves a build for that platform (or one it runs, as containerd's
// matcher: amd64 runs 386) only: FROM an amd64-only image for linux/arm64 fails.
import type { ImageSourceVertex } from '../../graph/types';
import { compatiblePlatforms, formatPlatform, matchPlatform, selectManifest } from '../../images/platform';
import { formatReference, parseReference } from '../../images/reference';
import { isIndexMediaType, MediaType, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type Platform } from '../../images/types';
import { layerMediaType } from '../../export/index';
import { pullImage, pullLayers, type PullEvent, type PullResult } from '../../registry/pull';
import { AppliedWhilePulling, unpackImage, type UnpackProgress } from '../../snapshot/index';
import { NotFoundError } from '../../util/errors';
import type { Executor, KeyContext, LayerSlot, VertexLogger } from '../types';
import type { OpEnv } from './shared';

interface ImageInfo {
  ref: string;
  manifest: Manifest;
  manifestDigest: Digest;
  config: ImageConfig;
  // Resolved at the registry with its layers left there: fetched by run() only,
  // so a build whose steps on this image all hit the cache never downloads them.
  pending?: PullResult;
  layersFetched?: Promise<number>;
}

// A pull's blob events as status lines under the step; a retry as a line of its output
// (a stalled registry must not look like a hung step).
function pullProgress(progress: VertexLogger): (ev: PullEvent) => void {
  return (ev) => {
    if (ev.type === 'progress') progress.status(ev.digest, { name: ev.digest, current: ev.current, total: ev.size });
    else if (ev.type === 'done') progress.status(ev.digest, { name: ev.digest, current: ev.size, total: ev.size, done: true });
    else if (ev.type === 'retry') progress.log(`retrying ${ev.what} (attempt ${ev.attempt}): ${ev.reason}\n`, 2);
  };
}

// An image's config names its platform; it must be one `want` runs.
function requirePlatform(name: string, config: ImageConfig, want: Platform): void {
  if (!config.architecture || !config.os) return;
  const has: Platform = { os: config.os, architecture: config.architecture, variant: config.variant };
  if (compatiblePlatforms(want).some((p) => matchPlatform(p, has))) return;
  throw new NotFoundError(`image ${name} is for ${formatPlatform(has)} only, not ${formatPlatform(want)}`, {
    hint: `build for ${formatPlatform(has)} (--platform), or use a base image that has ${formatPlatform(want)} (a multi-platform one)`,
  });
}

export interface ImageOp extends Executor<ImageSourceVertex> {
  // For the frontend: a base image's config, resolved the way the build will use it.
  resolveImageConfig(ref: string, platform: Platform, progress?: VertexLogger): Promise<{ ref: string; digest: string; config: ImageConfig }>;
}

const quiet: VertexLogger = { log() {}, status() {} };

export function imageOp(env: OpEnv): ImageOp {
  const { content, images, o } = env;
  const resolved = new Map<string, Promise<ImageInfo>>(); // ref + platform → resolved image

  async function readManifestFor(target: Descriptor, platform: Platform): Promise<{ manifest: Manifest; digest: Digest } | null> {
    if (!(await content.has(target.digest))) return null;
    if (isIndexMediaType(target.mediaType)) {
      const idx = await content.readJson<Index>(target.digest);
      let chosen: Descriptor;
      try {
        chosen = selectManifest(idx.manifests, platform);
      } catch {
        return null;
      }
      if (!(await content.has(chosen.digest))) return null;
      return { manifest: await content.readJson<Manifest>(chosen.digest), digest: chosen.digest };
    }
    return { manifest: await content.readJson<Manifest>(target.digest), digest: target.digest };
  }

  async function complete(m: Manifest): Promise<boolean> {
    for (const d of [m.config, ...m.layers]) if (!(await content.has(d.digest))) return false;
    return true;
  }

  async function resolveImage(v: ImageSourceVertex, ctx: KeyContext): Promise<ImageInfo> {
    const ref = parseReference(v.ref);
    const name = formatReference(ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' });
    const platform = v.platform ?? o.platform;
    const forcePull = o.pull || v.resolveMode === 'pull';
    ctx.progress.status('resolve', { name: `resolve ${name}` });
    // docker's default (--pull missing): the local store first, then the registry.
    if (!forcePull) {
      let target: Descriptor | null = null;
      if (ref.digest) {
        const d = ref.digest as Digest;
        if (await content.has(d)) target = { mediaType: '', digest: d, size: 0 };
        if (target) {
          const head = await content.readJson<{ mediaType?: string; manifests?: unknown }>(d);
          target.mediaType = head.mediaType ?? (head.manifests ? MediaType.OciIndex : MediaType.OciManifest);
        }
      } else {
        target = (await images.get(name))?.target ?? null;
      }
      if (target) {
        const got = await readManifestFor(target, platform);
        if (got && (await complete(got.manifest))) {
          const config = await content.readJson<ImageConfig>(got.manifest.config.digest);
          requirePlatform(name, config, platform);
          ctx.progress.status('resolve', { name: `resolve ${name}@${got.digest}`, done: true });
          return { ref: name, manifest: got.manifest, manifestDigest: got.digest, config };
        }
      }
      if (v.resolveMode === 'local') {
        throw new NotFoundError(`image ${name} is not in the local store`, { hint: `pull it first: img pull ${name}` });
      }
    }
    const res = await pullImage(v.ref, { stateDir: o.stateDir, platform, explicitPlatform: true, insecure: o.insecureRegistry, skipLayers: true, onEvent: pullProgress(ctx.progress) });
    const manifest = await content.readJson<Manifest>(res.manifest.digest);
    const config = await content.readJson<ImageConfig>(manifest.config.digest);
    requirePlatform(name, config, platform);
    ctx.progress.status('resolve', { name: `resolve ${name}@${res.manifest.digest}`, done: true });
    return { ref: name, manifest, manifestDigest: res.manifest.digest, config, pending: res.complete ? undefined : res };
  }

  // One resolution per reference and platform per build: the frontend's config
  // lookup and the image vertex agree on the digest, and pull at most once.
  function image(v: ImageSourceVertex, ctx: KeyContext): Promise<ImageInfo> {
    const plat = v.platform ?? o.platform;
    const id = `${v.ref}|${plat.os}/${plat.architecture}/${plat.variant ?? ''}`;
    let p = resolved.get(id);
    if (!p) {
      p = resolveImage(v, ctx);
      resolved.set(id, p);
      p.catch(() => resolved.delete(id));
    }
    return p;
  }

  return {
    async contentKey(v, ctx) {
      const info = await image(v, ctx);
      return `manifest:${info.manifestDigest}`;
    },

    async run(v, ctx) {
      const info = await image(v, ctx);
      const what = `unpacking ${info.ref}@${info.manifestDigest}`;
      const onUnpack = (ev: UnpackProgress) => {
        if (ev.status === 'extracting') ctx.progress.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}` });
        else if (ev.status === 'done') ctx.progress.status(`x-${ev.digest}`, { name: `extracting ${ev.digest}`, current: ev.bytes, done: true });
      };
      // The bottom layer still to unpack goes into its snapshot while it downloads.
      let applied: AppliedWhilePulling | undefined;
      if (info.pending && !info.layersFetched && info.manifest.layers.length > 0) {
        applied = await AppliedWhilePulling.plan(o.stateDir, env.sn, info.manifest, info.config, onUnpack);
      }
      try {
        if (info.pending) {
          info.layersFetched ??= pullLayers(info.pending, { stateDir: o.stateDir, insecure: o.insecureRegistry, onEvent: pullProgress(ctx.progress), layerCheck: applied?.checkFor });
          await info.layersFetched;
        }
        ctx.progress.status('unpack', { name: what });
        let snapshot: string | null = null;
        if (info.manifest.layers.length > 0) {
          snapshot = await unpackImage(o.stateDir, env.sn, info.manifest, info.config, onUnpack, { ref: `${info.ref}@${info.manifestDigest}`, applied });
        }
        ctx.progress.status('unpack', { name: what, done: true });
        const diffIds = info.config.rootfs?.diff_ids ?? [];
        const layers: LayerSlot[] = info.manifest.layers.map((d, i) => ({
          blob: { digest: d.digest, diffId: diffIds[i], mediaType: layerMediaType(d.mediaType, true), size: d.size },
        }));
        return { snapshot, layers, meta: { manifest: info.manifestDigest, config: info.manifest.config.digest } };
      } finally {
        await applied?.discard(); // what the unpack did not take (a failed pull)
      }
    },

    async resolveImageConfig(ref, platform, progress = quiet) {
      const v = { id: '', name: ref, kind: 'image', inputs: [], ref, platform } as ImageSourceVertex;
      const info = await image(v, { signal: new AbortController().signal, progress, noCache: false });
      return { ref: info.ref, digest: info.manifestDigest, config: structuredClone(info.config) };
    },
  };
}
