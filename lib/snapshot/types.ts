// The snapshotter contract: how the build engine (solver), `unpack`, `du` and
// `prune` get writable and read-only root filesystems, commit them, and read
// their changes back as layers. Three backends implement it (lib/snapshot/*):
// kernel overlayfs and fuse-overlayfs inside our user namespace, and native
// (plain directory copies). State: <state>/snapshots/<backend>/.
import type { Change } from '../archive/diff';
import type { DiskFormat } from '../archive/overlay-format';

export type { Change, DiskFormat };

export type SnapshotBackend = 'overlayfs' | 'fuse-overlayfs' | 'native';

export interface SnapshotInfo {
  id: string;
  parent: string | null;
  kind: 'active' | 'committed';
  description: string;
  createdAt: string; // ISO 8601
  size?: number; // bytes of this snapshot's own fs dir, when computed
  labels?: Record<string, string>;
}

// A mounted (or, for native, directly usable) root filesystem.
export interface Mounted {
  rootfs: string;
  release(): Promise<void>; // unmounts; idempotent
}

export interface Snapshotter {
  readonly backend: SnapshotBackend;
  // How a snapshot's own directory (diffRoot) holds a layer: give it to applyLayer
  // and writeLayer (archive/overlay-format.ts).
  readonly diskFormat: DiskFormat;
  // A new active (writable) snapshot on top of `parent` (committed id, or null for empty).
  prepare(parent: string | null, description: string): Promise<string>;
  // A read-only active snapshot of `parent`.
  view(parent: string, description: string): Promise<string>;
  // The merged rootfs of an active or committed snapshot (committed → read-only).
  mount(id: string): Promise<Mounted>;
  // Freezes an active snapshot. `key` names the result (a layer chainID, a cache
  // key); committing under a key that already exists keeps the existing one,
  // removes `id`, and returns the existing id. `linkedFrom`: the snapshots whose stored
  // inodes it hard-linked (StoredDir.shares), kept in its metadata.
  commit(id: string, description: string, key?: string, opts?: { linkedFrom?: string[] }): Promise<string>;
  // Looks a snapshot up by id or key; null when absent.
  get(key: string): Promise<SnapshotInfo | null>;
  remove(id: string): Promise<void>;
  // Disk usage of the snapshot's own data (not its parents').
  usage(id: string): Promise<{ size: number; inodes: number }>;
  // What the snapshot changed against its parent (overlay: read straight from the upper dir).
  changes(id: string): AsyncIterable<Change>;
  // The directory writeLayer reads changed files' contents from
  // (upper dir for overlay backends; the snapshot dir itself for native).
  diffRoot(id: string): Promise<Mounted>;
  list(): Promise<SnapshotInfo[]>;
  // The directories that store a committed snapshot's files, newest first: native's
  // whole tree, or an overlay chain's own dirs. A regular file of the mounted view is
  // the first one found at its path there when type, mode, owner, size, mtime and
  // xattrs agree; committed files are never written in place (a child snapshot copies
  // its parent's tree or copies a file up before writing), so a copy may hard-link it
  // instead of copying its data (same filesystem as every snapshot's fs/).
  storeDirs(id: string): Promise<StoredDir[]>;
}

export interface StoredDir {
  id: string; // the snapshot whose own directory it is
  dir: string;
  // The snapshots whose inodes it may hold: itself and those its files were linked
  // from. One image must not hold one inode at two paths (a tree walker takes them for
  // a hard link): a copy links from it only into a chain that shares none of these.
  shares: string[];
}
