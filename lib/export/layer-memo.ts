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
import { readJsonRecord, writeJsonAtomic } from '../util/fsutil';

export class LayerBlobMemo {
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly opts: { blobExists?(digest: string): Promise<boolean> } = {},
  ) {
    this.dir = path.join(stateDir, 'cache');
  }

  async get(snapshot: string, variant = ''): Promise<LayerBlob | undefined> {
    const rec = await readJsonRecord<{ snapshot: string; blob: LayerBlob }>(this.file('layers', snapshot, '', variant));
    if (!rec || rec.snapshot !== snapshot) return undefined;
    if (this.opts.blobExists && !(await this.opts.blobExists(rec.blob.digest))) return undefined;
    return rec.blob;
  }

  async put(snapshot: string, blob: LayerBlob, variant = ''): Promise<void> {
    const { uncompressedSize: _u, ...stored } = blob;
    await writeJsonAtomic(this.file('roots', snapshot, 'layer-', variant), { digests: [blob.digest] });
    await writeJsonAtomic(this.file('layers', snapshot, '', variant), { snapshot, blob: stored, created: new Date().toISOString() });
  }

  private file(sub: 'layers' | 'roots', snapshot: string, prefix: string, variant: string): string {
    const id = variant ? `${snapshot}\0${variant}` : snapshot;
    return path.join(this.dir, sub, `${prefix}${createHash('sha256').update(id).digest('hex')}.json`);
  }
}
