// Removing image names and the blobs only they referenced (img rm).
import { ContentStore } from '../content/store';
import { familiarName, formatReference, parseReference } from '../images/reference';
import { isIdName } from '../images/inspect';
import { ImageStore } from '../images/store';
import type { Digest } from '../images/types';
import { walk } from '../images/walk';
import { collectGarbage } from './gc';

export interface RemoveResult {
  untagged: string[]; // familiar names
  deleted: Digest[]; // blobs removed by the GC, target-first order
  missing: string[]; // names as given that were not found
  reclaimedBytes: number;
}

// Every name is tried even when some are missing (like docker rmi); `print`
// gets docker's lines: "Untagged: busybox:latest", "Deleted: sha256:…".
export async function removeImages(stateDir: string, names: string[], print: (line: string) => void = () => {}): Promise<RemoveResult> {
  const images = new ImageStore(stateDir);
  const content = new ContentStore(stateDir);
  const res: RemoveResult = { untagged: [], deleted: [], missing: [], reclaimedBytes: 0 };
  const order: Digest[] = [];
  const refs = names.map((n) => parseReference(n)); // an invalid name fails before anything is removed
  for (const [i, input] of names.entries()) {
    const ref = refs[i];
    // An image `img load` found unnamed is kept under its ID; docker removes it by ID too.
    const byId = isIdName(input);
    const key = byId ? input : formatReference(ref);
    const rec = await images.get(key);
    if (!rec) {
      res.missing.push(input);
      continue;
    }
    // Remember the graph (target first) to report deletions in a readable order.
    for (const d of (await walk(content, [rec.target])).keys()) order.push(d);
    if (await images.delete(key)) {
      const familiar = byId ? input : familiarName(ref);
      res.untagged.push(familiar);
      if (!byId) print(`Untagged: ${familiar}`); // an ID was no tag: only its Deleted lines follow
    }
  }
  if (res.untagged.length === 0) return res;
  const gc = await collectGarbage(stateDir);
  const removed = new Set(gc.removed);
  const seen = new Set<Digest>();
  for (const d of [...order, ...gc.removed]) {
    if (!removed.has(d) || seen.has(d)) continue;
    seen.add(d);
    res.deleted.push(d);
    print(`Deleted: ${d}`);
  }
  res.reclaimedBytes = gc.reclaimedBytes;
  return res;
}
