// Unpacks an image's layers into a chain of committed snapshots, one per
// layer, each named by its chainID (OCI image spec: ChainID(L0) = DiffID(L0),
// ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))). A chain
// prefix that is already unpacked (by this image or any other) is reused.
import { createHash } from 'node:crypto';
import { applyLayer } from '../archive/apply';
import { ContentStore } from '../content/store';
import type { Digest, ImageConfig, Manifest } from '../images/types';
import { ImgError } from '../util/errors';
import { debug } from '../util/log';
import { acquireLease, lockKey } from './lease';
import { inUserNamespace } from './overlay';
import type { Snapshotter } from './types';

export interface UnpackProgress {
  layer: number; // 0-based index in the manifest
  total: number;
  digest: string; // layer blob digest
  chainId: string;
  status: 'extracting' | 'done' | 'reused';
  bytes?: number; // uncompressed bytes applied (done)
}

export interface UnpackOptions {
  // Shown in du/prune: "pulled from <ref>" (e.g. docker.io/library/busybox:latest@sha256:…).
  ref?: string;
}

export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev ? `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` : d);
  }
  return out;
}

export async function unpackLayers(
  stateDir: string,
  sn: Snapshotter,
  manifest: Manifest,
  config: ImageConfig,
  onProgress?: (ev: UnpackProgress) => void,
  opts: UnpackOptions = {},
): Promise<string> {
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new ImgError(
      `image config lists ${diffIds.length} layer diff IDs but the manifest has ${manifest.layers.length} layers`,
      { hint: 'the image is malformed; rebuild or re-push it' },
    );
  }
  if (manifest.layers.length === 0) {
    throw new ImgError('image has no layers; nothing to unpack', { hint: 'use an image with at least one layer (FROM scratch images cannot be unpacked)' });
  }
  const chains = chainIds(diffIds);
  const content = new ContentStore(stateDir);
  const total = manifest.layers.length;
  const description = opts.ref ? `pulled from ${opts.ref}` : `unpacked from image config ${manifest.config.digest}`;
  const format = sn.backend === 'native' ? 'native' : 'overlay';
  const opaqueXattr = inUserNamespace() ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
  let parent: string | null = null;
  for (let i = 0; i < total; i++) {
    const layer = manifest.layers[i];
    const chainId = chains[i];
    const ev = { layer: i, total, digest: layer.digest, chainId };
    const found = await sn.get(chainId);
    if (found && found.kind === 'committed') {
      // Lease it so a concurrent prune cannot take it before we build on it.
      await acquireLease(stateDir, sn.backend, found.id);
      parent = found.id;
      onProgress?.({ ...ev, status: 'reused' });
      continue;
    }
    const lock = await lockKey(stateDir, sn.backend, chainId);
    try {
      const again = await sn.get(chainId); // someone finished it while we waited
      if (again && again.kind === 'committed') {
        await acquireLease(stateDir, sn.backend, again.id);
        parent = again.id;
        onProgress?.({ ...ev, status: 'reused' });
        continue;
      }
      onProgress?.({ ...ev, status: 'extracting' });
      const active = await sn.prepare(parent, `extracting ${layer.digest}`);
      let committed: string;
      try {
        const target = await sn.diffRoot(active);
        let res;
        try {
          res = await applyLayer(content.createReadStream(layer.digest), {
            root: target.rootfs,
            whiteoutFormat: format,
            sameOwner: true,
            opaqueXattr,
            onDebug: debug,
          });
        } finally {
          await target.release();
        }
        if (res.diffId !== diffIds[i]) {
          throw new ImgError(`layer ${layer.digest} unpacks to ${res.diffId}, but the image config says ${diffIds[i]}`, {
            hint: 'the stored blob or the config is corrupt; remove the image (img rm) and pull it again',
          });
        }
        committed = await sn.commit(active, description, chainId);
        onProgress?.({ ...ev, status: 'done', bytes: res.size });
      } catch (err) {
        await sn.remove(active).catch(() => undefined);
        throw err;
      }
      parent = committed;
    } finally {
      await lock.release();
    }
  }
  return parent!;
}
