// The compressed layer made from a snapshot's diff, remembered per snapshot (and
// per compression: gzip at the default level is the plain entry, any other
// compression or level a variant), so a cached build (or a second output of
// the same build) exports without re-diffing and re-compressing. A base layer
// recompressed by force-compression is remembered under its blob digest.
//
// FILE LAYOUT (under <state>/cache/, beside the solver's records; `img prune`
// removes layers/ and roots/ with them):
//   layers/<sha256(snapshot id[ + "\0" + variant])>.json  {snapshot, blob: {digest, diffId, mediaType, size}, created}
//   roots/layer-<same hex>.json        {"digests": [blob digest]}: the GC root
//                                      (lib/state/gc.ts), written before the memo
// A memo is only trusted while its blob is still in the content store.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { LayerBlob } from '../images/types';
import { registerCacheRoot } from '../state/gc';
import { readJsonRecord, writeJsonAtomic } from '../util/fsutil';

export class LayerBlobMemo {
  private readonly dir: string;
  // Layers being made in this process, so an early start (a build layer exported while
  // later steps run) and the exporter's own call make it once.
  private readonly making = new Map<string, Promise<LayerBlob | undefined>>();

  constructor(
    private readonly stateDir: string,
    private readonly opts: { blobExists?(digest: string): Promise<boolean> } = {},
  ) {
    this.dir = path.join(stateDir, 'cache');
  }

  async get(snapshot: string, variant = ''): Promise<LayerBlob | undefined> {
    const rec = await readJsonRecord<{ snapshot: string; blob: LayerBlob }>(this.layerFile(snapshot, variant));
    if (!rec || rec.snapshot !== snapshot) return undefined;
    if (this.opts.blobExists && !(await this.opts.blobExists(rec.blob.digest))) return undefined;
    return rec.blob;
  }

  async put(snapshot: string, blob: LayerBlob, variant = ''): Promise<void> {
    const { uncompressedSize: _u, ...stored } = blob;
    await registerCacheRoot(this.stateDir, `layer-${memoHex(snapshot, variant)}`, [blob.digest]);
    await writeJsonAtomic(this.layerFile(snapshot, variant), { snapshot, blob: stored, created: new Date().toISOString() });
  }

  // The remembered blob, else the one `make` makes (remembered then); undefined when
  // `make` has nothing to make from (the snapshot is gone).
  getOrMake(snapshot: string, variant: string, make: () => Promise<LayerBlob | undefined>): Promise<LayerBlob | undefined> {
    const k = memoHex(snapshot, variant);
    let p = this.making.get(k);
    if (!p) {
      p = (async () => {
        const known = await this.get(snapshot, variant);
        if (known) return known;
        const made = await make();
        if (made) await this.put(snapshot, made, variant);
        return made;
      })();
      this.making.set(k, p);
      const done = () => this.making.delete(k);
      p.then(done, done);
    }
    return p;
  }

  private layerFile(snapshot: string, variant: string): string {
    return path.join(this.dir, 'layers', `${memoHex(snapshot, variant)}.json`);
  }
}

function memoHex(snapshot: string, variant: string): string {
  return createHash('sha256').update(variant ? `${snapshot}\0${variant}` : snapshot).digest('hex');
}
