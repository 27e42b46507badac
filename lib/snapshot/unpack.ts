// Unpacks an image's layers into a chain of committed snapshots, one per
// layer, each named by its chainID (OCI image spec: ChainID(L0) = DiffID(L0),
// ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))). A chain
// prefix that is already unpacked (by this image or any other) is reused.
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { applyLayer } from '../archive/apply';
import { dropUnneededWhiteouts } from '../archive/overlay-format';
import { ContentStore } from '../content/store';
import type { Digest, ImageConfig, Manifest } from '../images/types';
import { toBytes } from '../util/bytenames';
import { ContentError, UnsupportedError } from '../util/errors';
import { debug, warn } from '../util/log';
import { ForwardingSink } from '../util/sink';
import { lockKey } from './lease';
import type { BaseSnapshotter } from './base';
import type { Snapshotter } from './types';

// Layers extracted at once by the overlay backends.
const UNPACK_CONCURRENCY = 3;

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
  // Layers already applied while they downloaded (applyWhilePulling): committed here.
  applied?: AppliedWhilePulling;
}

// Unpacking while pulling. The pull decompresses and hashes every layer as it downloads
// (its check that a stored layer decompresses to its diff_id); for the bottom layer
// still to unpack (its lower layers are known) this check is the unpack itself: the
// download's bytes go straight into a new snapshot, which unpackLayers then commits, so
// that layer is not read back, decompressed and hashed a second time after the pull.
// The other layers unpack after the pull as before (their lowers are not there yet).
export class AppliedWhilePulling {
  private readonly layers = new Map<number, ApplyingCheck>();
  // The snapshot the layer goes into, prepared while the pull locks the store and asks for
  // the blob (not after its first bytes arrive); the first check takes it, discard() removes
  // it when no check did.
  private prepared: Promise<string> | null = null;

  private constructor(
    private readonly sn: BaseSnapshotter,
    private readonly manifest: Manifest,
    private readonly index: number, // the layer applied while pulling, -1: none
    private readonly chainId: string,
    private readonly parent: string | null,
    private readonly onProgress?: (ev: UnpackProgress) => void,
  ) {}

  // The first layer not unpacked yet and the committed snapshot below it.
  static async plan(stateDir: string, snapshotter: Snapshotter, manifest: Manifest, config: ImageConfig, onProgress?: (ev: UnpackProgress) => void): Promise<AppliedWhilePulling> {
    const sn = snapshotter as BaseSnapshotter;
    const chains = chainIds(config.rootfs?.diff_ids ?? []);
    let parent: string | null = null;
    let first = 0;
    for (; first < Math.min(chains.length, manifest.layers.length); first++) {
      // Leased, then checked again (getLeased): a concurrent prune cannot take it now.
      const found = await sn.getLeased(chains[first]);
      if (!found) break;
      parent = found.id;
    }
    const index = first < manifest.layers.length && chains.length === manifest.layers.length ? first : -1;
    const applied = new AppliedWhilePulling(sn, manifest, index, index < 0 ? '' : chains[index], parent, onProgress);
    if (index >= 0) {
      applied.prepared = sn.prepare(parent, `extracting ${manifest.layers[index].digest}`);
      applied.prepared.catch(() => undefined); // awaited by the check or by discard()
    }
    return applied;
  }

  // For the pull (PullOptions.layerCheck): a check that applies this layer, or undefined.
  checkFor = (desc: { digest: string }): ApplyingCheck | undefined => {
    if (this.index < 0 || desc.digest !== this.manifest.layers[this.index].digest) return undefined;
    const i = this.index;
    debug(`layer ${desc.digest}: unpacking while it downloads`);
    // A retried download starts over in a new snapshot; the abandoned one is removed.
    void this.layers.get(i)?.discard();
    const check = new ApplyingCheck(async (input, self) => {
      this.onProgress?.({ layer: i, total: this.manifest.layers.length, digest: desc.digest, chainId: this.chainId, status: 'extracting' });
      const early = this.prepared;
      this.prepared = null;
      const active = await (early ?? this.sn.prepare(this.parent, `extracting ${desc.digest}`));
      self.active = active;
      const lowers = this.sn.diskFormat.kind === 'overlay' ? await this.sn.parentDirs(active) : undefined;
      const target = await this.sn.diffRoot(active);
      try {
        return await applyLayer(input, { root: target.rootfs, format: this.sn.diskFormat, lowers, sameOwner: true, onDebug: debug });
      } finally {
        await target.release();
      }
    }, this.sn);
    this.layers.set(i, check);
    return check;
  };

  // The snapshot layer i went into, with what its apply found, once: it is the caller's then.
  take(i: number, parent: string | null): { active: string; diffId: Digest; size: number; skippedDevices: number } | undefined {
    const check = this.layers.get(i);
    if (!check?.applied || !check.active || parent !== this.parent) return undefined;
    this.layers.delete(i);
    return { active: check.active, ...check.applied };
  }

  // Removes what was applied and not taken (a failed pull, a layer another process unpacked first).
  async discard(): Promise<void> {
    for (const c of this.layers.values()) await c.discard();
    this.layers.clear();
    const early = this.prepared;
    this.prepared = null;
    const unused = await early?.catch(() => null);
    if (unused) await this.sn.remove(unused).catch((err) => debug(`removing ${unused}: ${(err as Error).message}`));
  }
}

// A pull's layer check that applies the layer into a new snapshot (see AppliedWhilePulling).
// As the pull's own check, its input never errors: a failure is kept for result().
class ApplyingCheck extends ForwardingSink<PassThrough> {
  active: string | null = null;
  applied: { diffId: Digest; size: number; skippedDevices: number } | null = null;
  private readonly done: Promise<void>;

  constructor(
    apply: (input: Readable, self: ApplyingCheck) => Promise<{ diffId: Digest; size: number; skippedDevices: number }>,
    private readonly sn: BaseSnapshotter,
  ) {
    super(new PassThrough({ highWaterMark: 1 << 20 }));
    this.inner.on('error', () => undefined); // the apply's pipeline reports it
    this.done = apply(this.inner, this).then(
      (r) => {
        this.applied = { diffId: r.diffId, size: r.size, skippedDevices: r.skippedDevices };
      },
      (err: Error) => this.fail(err),
    );
  }

  async result(): Promise<Digest> {
    if (!this.writableEnded) this.end();
    await this.done;
    if (this.failure) throw this.failure;
    return this.applied!.diffId;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    this.fail(new Error('the download was abandoned'));
    cb(err);
  }

  // Stops the apply and removes its snapshot.
  async discard(): Promise<void> {
    if (!this.destroyed) this.destroy();
    await this.done;
    this.applied = null;
    const active = this.active;
    this.active = null;
    if (active) await this.sn.remove(active).catch((err) => debug(`removing ${active}: ${(err as Error).message}`));
  }
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
  snapshotter: Snapshotter,
  manifest: Manifest,
  config: ImageConfig,
  onProgress?: (ev: UnpackProgress) => void,
  opts: UnpackOptions = {},
): Promise<string> {
  // Our own snapshotters (BaseSnapshotter) also offer re-parenting for parallel extraction.
  const sn = snapshotter as BaseSnapshotter;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new ContentError(
      `image config lists ${diffIds.length} layer diff IDs but the manifest has ${manifest.layers.length} layers`,
      { hint: 'the image is malformed; rebuild or re-push it' },
    );
  }
  if (manifest.layers.length === 0) {
    throw new UnsupportedError('image has no layers; nothing to unpack', { hint: 'use an image with at least one layer (FROM scratch images cannot be unpacked)' });
  }
  const chains = chainIds(diffIds);
  const content = new ContentStore(stateDir);
  const total = manifest.layers.length;
  const description = opts.ref ? `pulled from ${opts.ref}` : `unpacked from image config ${manifest.config.digest}`;
  const ev = (i: number) => ({ layer: i, total, digest: manifest.layers[i].digest, chainId: chains[i] });

  // Applies layer i into the active snapshot `active` and checks its diffID. `lowers`:
  // the overlay layer dirs below it when known (archive/apply.ts); without them a layer
  // whose entries depend on its lower layers is not applied (null: extract it again later).
  const blindWhiteouts = new Map<number, string[]>(); // layer → whiteouts to check once its lowers are known
  const extract = async (i: number, active: string, lowers: string[] | undefined): Promise<number | null> => {
    onProgress?.({ ...ev(i), status: 'extracting' });
    const target = await sn.diffRoot(active);
    try {
      const res = await applyLayer(content.createReadStream(manifest.layers[i].digest), {
        root: target.rootfs,
        format: sn.diskFormat,
        lowers,
        sameOwner: true,
        onDebug: debug,
      });
      if (res.needsLowers) {
        debug(`unpack ${manifest.layers[i].digest}: its entries depend on the layers below; extracting it again once they are in place`);
        return null;
      }
      if (res.blindWhiteouts) blindWhiteouts.set(i, res.blindWhiteouts);
      if (res.skippedDevices) {
        // The device nodes are not in the snapshot, so not in anything built or unpacked from it.
        warn(`layer ${manifest.layers[i].digest}: left out ${res.skippedDevices} device node(s): an unprivileged user cannot create them`);
      }
      if (res.diffId !== diffIds[i]) {
        throw new ContentError(`layer ${manifest.layers[i].digest} unpacks to ${res.diffId}, but the image config says ${diffIds[i]}`, {
          hint: 'the stored blob or the config is corrupt; remove the image (img rm) and pull it again',
        });
      }
      return res.size;
    } finally {
      await target.release();
    }
  };

  // The longest prefix already unpacked (by this image or any other).
  let parent: string | null = null;
  let first = 0;
  for (; first < total; first++) {
    // Leased, then checked again (getLeased): a concurrent prune cannot take it before we build on it.
    const found = await sn.getLeased(chains[first]);
    if (!found) break;
    parent = found.id;
    onProgress?.({ ...ev(first), status: 'reused' });
  }
  if (first === total) {
    await opts.applied?.discard();
    return parent!;
  }

  // Lock the missing keys in chain order (every unpacker locks in that order,
  // so two of them never wait on each other in a cycle), then re-check: the
  // previous holder may have committed some.
  const locks: { release(): Promise<void> }[] = [];
  const actives = new Map<number, string>();
  try {
    for (let i = first; i < total; i++) locks.push(await lockKey(stateDir, sn.backend, chains[i]));
    const missing: number[] = [];
    for (let i = first; i < total; i++) {
      const found = await sn.get(chains[i]);
      if (!found || found.kind !== 'committed') missing.push(i);
    }
    const sizes = new Map<number, number>();
    // The layer applied while it downloaded (AppliedWhilePulling) counts as extracted.
    const placed = new Set<number>();
    const early = missing[0] === first ? opts.applied?.take(first, parent) : undefined;
    if (early) {
      actives.set(first, early.active);
      if (early.diffId !== diffIds[first]) {
        throw new ContentError(`layer ${manifest.layers[first].digest} unpacks to ${early.diffId}, but the image config says ${diffIds[first]}`, {
          hint: 'the stored blob or the config is corrupt; remove the image (img rm) and pull it again',
        });
      }
      if (early.skippedDevices) warn(`layer ${manifest.layers[first].digest}: left out ${early.skippedDevices} device node(s): an unprivileged user cannot create them`);
      sizes.set(first, early.size);
      placed.add(first);
      missing.shift();
    }
    if (sn.independentLayers) {
      // Overlay backends: every layer goes into its own dir, so extract them
      // concurrently (decompression and file writes overlap), then commit in order.
      // Only the first missing layer knows its lower layers now; one whose entries
      // depend on them is left for the ordered pass below.
      const lowersOfFirst = parent ? await sn.parentDirs(parent, true) : [];
      let next = 0;
      let stop = false;
      const worker = async () => {
        while (next < missing.length && !stop) {
          const i = missing[next++];
          const active = await sn.prepare(null, `extracting ${manifest.layers[i].digest}`);
          actives.set(i, active);
          try {
            const size = await extract(i, active, i === first ? lowersOfFirst : undefined);
            if (size === null) {
              actives.delete(i);
              await sn.remove(active);
            } else sizes.set(i, size);
          } catch (err) {
            stop = true;
            throw err;
          }
        }
      };
      // allSettled: on a failure, let the other workers stop before cleaning up.
      const results = await Promise.allSettled(Array.from({ length: Math.min(UNPACK_CONCURRENCY, missing.length) }, worker));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    for (let i = first; i < total; i++) {
      const found = await sn.getLeased(chains[i]);
      if (found) {
        const stale = actives.get(i);
        if (stale) {
          actives.delete(i);
          await sn.remove(stale);
        }
        parent = found.id;
        onProgress?.({ ...ev(i), status: 'reused' });
        continue;
      }
      let active = actives.get(i);
      if (active && placed.has(i)) {
        // made on its parent already
      } else if (active) {
        await sn.reparent(active, parent);
        const whiteouts = blindWhiteouts.get(i);
        if (whiteouts) {
          const upper = await sn.diffRoot(active);
          try {
            dropUnneededWhiteouts(sn.diskFormat, toBytes(upper.rootfs), (await sn.parentDirs(active)).map(toBytes), whiteouts);
          } finally {
            await upper.release();
          }
        }
      } else {
        active = await sn.prepare(parent, `extracting ${manifest.layers[i].digest}`);
        actives.set(i, active);
        const lowers = sn.diskFormat.kind === 'overlay' ? await sn.parentDirs(active) : undefined;
        sizes.set(i, (await extract(i, active, lowers))!); // never null: native needs no lowers, overlay has them
      }
      parent = await sn.commit(active, description, chains[i]);
      actives.delete(i);
      onProgress?.({ ...ev(i), status: 'done', bytes: sizes.get(i) });
    }
  } finally {
    for (const a of actives.values()) await sn.remove(a).catch(() => undefined);
    for (const l of locks.reverse()) await l.release();
    await opts.applied?.discard();
  }
  return parent!;
}
