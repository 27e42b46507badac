// Entry points of the snapshot room: pick/open a snapshotter for a state dir,
// and unpack an image's layers into a chain of committed snapshots.
import type { ImageConfig, Manifest } from '../images/types';
import type { SnapshotBackend, Snapshotter } from './types';
import { openBackend } from './open';
import { unpackLayers, type UnpackOptions, type UnpackProgress } from './unpack';

export type { SnapshotBackend, SnapshotInfo, Snapshotter, Mounted, Change } from './types';
export type { UnpackProgress, UnpackOptions } from './unpack';
export { AppliedWhilePulling, chainIds } from './unpack';

// `auto` tries overlayfs, then fuse-overlayfs, then native by actually mounting
// in this namespace; the verdict is cached in <state>/snapshots/auto.json per
// kernel release. Call enterUserNamespace() first when unprivileged.
export function openSnapshotter(stateDir: string, backend: 'auto' | SnapshotBackend): Promise<Snapshotter> {
  return openBackend(stateDir, backend);
}

// Applies the manifest's layers in order; each layer becomes a committed
// snapshot keyed by its chainID (OCI image spec), so layers are shared across
// images and an already-unpacked prefix is reused. Concurrent unpackers of the
// same chain serialize on a per-key lock. Resolves to the top snapshot id.
export function unpackImage(
  stateDir: string,
  sn: Snapshotter,
  manifest: Manifest,
  config: ImageConfig,
  onProgress?: (ev: UnpackProgress) => void,
  opts?: UnpackOptions,
): Promise<string> {
  return unpackLayers(stateDir, sn, manifest, config, onProgress, opts);
}

// Mounts snapshot `id` for the duration of fn (released however fn ends).
export async function withMounted<T>(sn: Snapshotter, id: string, fn: (rootfs: string) => Promise<T>): Promise<T> {
  const m = await sn.mount(id);
  try {
    return await fn(m.rootfs);
  } finally {
    await m.release();
  }
}
