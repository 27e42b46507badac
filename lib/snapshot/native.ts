// Native backend: plain directories. An active snapshot is a full copy of its
// parent's tree (copy_file_range / reflinks on the addon's thread pool), so it
// needs no mount support at all; changes come from comparing with the parent.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { compareDirs } from '../archive/diff';
import { NATIVE_FORMAT } from '../archive/overlay-format';
import { BaseSnapshotter, type SnapshotMeta } from './base';
import { bindMount, copyTree } from './sys';
import type { Change, Mounted, StoredDir } from './types';

export class NativeSnapshotter extends BaseSnapshotter {
  readonly diskFormat = NATIVE_FORMAT;

  constructor(stateDir: string) {
    super(stateDir, 'native');
  }

  protected async initActive(dir: string, parent: SnapshotMeta | null, readonly: boolean): Promise<void> {
    const fsDir = path.join(dir, 'fs');
    if (parent && !readonly) {
      await copyTree(this.fsDir(parent.id), fsDir);
    } else {
      await fsp.mkdir(fsDir, { mode: 0o755 });
    }
  }

  // A committed native snapshot is a whole tree of its own.
  override async storeDirs(id: string): Promise<StoredDir[]> {
    const meta = await this.mustMeta(id);
    return meta.kind === 'committed' ? [this.storedDir(meta)] : [];
  }

  protected async mountMerged(meta: SnapshotMeta, chain: SnapshotMeta[]): Promise<Mounted> {
    if (meta.kind === 'active' && !meta.readonly) return { rootfs: this.fsDir(meta.id), release: async () => {} };
    // Read-only: a read-only bind mount of the committed tree.
    const source = meta.kind === 'committed' ? this.fsDir(meta.id) : this.fsDir(chain[1].id);
    const target = await this.mountPoint();
    try {
      bindMount(source, target, true);
    } catch (err) {
      this.returnMountPoint(target);
      throw err;
    }
    return this.trackedMount(target);
  }

  protected async *changesOf(meta: SnapshotMeta, parent: SnapshotMeta | null): AsyncIterable<Change> {
    yield* compareDirs(parent ? this.fsDir(parent.id) : null, this.fsDir(meta.id));
  }
}
