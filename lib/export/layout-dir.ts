// `-o type=oci|docker,tar=false,dest=DIR`: the image as an OCI layout directory,
// as BuildKit's client writes it (a local content store at DIR, then
// client/ociindex's Put of the exporter's descriptor):
//   DIR/blobs/sha256/<hex>  every blob below the image, written when missing
//   DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
//   DIR/index.json          merged: an entry of the same name (or tag) is replaced,
//                           the others kept — several builds can share one layout
// One entry per name (io.containerd.image.name: the full name, ref.name: its tag),
// or one with ref.name "latest" when unnamed; created as in the archives. Neither
// variant writes a manifest.json.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as fs from 'node:fs';
import type { ContentStore } from '../content/store';
import { formatReference, parseReference } from '../images/reference';
import { MediaType, type Descriptor, type Index } from '../images/types';
import { ContentError, isErrno } from '../util/errors';
import { makeDirs, writeFileAtomic } from '../util/fsutil';
import { ANNOTATION_CREATED, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, blobPath, indexEntry, requireBlobs } from './oci-layout';

export async function writeLayoutDir(store: ContentStore, target: Descriptor, names: string[], dest: string, opts: { created?: string } = {}): Promise<void> {
  const blobs = await requireBlobs(store, [target], names.join(', ') || target.digest);
  await makeDirs(path.join(dest, 'blobs', 'sha256'), 'directory for --output tar=false dest');
  for (const d of new Map(blobs.map((b) => [b.digest, b])).values()) {
    const file = path.join(dest, blobPath(d.digest));
    if (await fsp.stat(file).then((st) => st.size === d.size, () => false)) continue;
    const tmp = `${file}.${process.pid}.tmp`;
    await pipeline(store.createReadStream(d.digest), fs.createWriteStream(tmp, { mode: 0o644 }));
    await fsp.rename(tmp, file);
  }
  await writeFileAtomic(path.join(dest, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexFile = path.join(dest, 'index.json');
  let index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  try {
    const old = JSON.parse(await fsp.readFile(indexFile, 'utf8')) as Partial<Index>;
    index = { ...old, schemaVersion: old.schemaVersion || 2, mediaType: old.mediaType || MediaType.OciIndex, manifests: old.manifests ?? [] };
  } catch (err) {
    if (err instanceof SyntaxError) throw new ContentError(`${indexFile} is not JSON: ${err.message}`, { hint: 'remove it, or choose another dest' });
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  // A created the descriptor has (a user's annotation) wins, as in BuildKit.
  const base: Record<string, string> = { ...(opts.created ? { [ANNOTATION_CREATED]: opts.created } : {}), ...target.annotations };
  const entries = names.length
    ? names.map((n) => {
        const ref = parseReference(n);
        const full = formatReference(ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' });
        return { imageName: full, refName: ref.tag ?? parseReference(full).tag ?? full };
      })
    : [{ imageName: '', refName: 'latest' }];
  for (const { imageName, refName } of entries) {
    const ann: Record<string, string> = { ...base, [ANNOTATION_REF_NAME]: refName };
    if (imageName) ann[ANNOTATION_IMAGE_NAME] = imageName;
    // The same name (or, unnamed, the same tag without a name) replaces its old entry.
    index.manifests = index.manifests.filter(
      (m) => m.annotations?.[ANNOTATION_REF_NAME] !== refName || (m.annotations?.[ANNOTATION_IMAGE_NAME] ?? '') !== imageName,
    );
    const sorted = Object.fromEntries(Object.keys(ann).sort().map((k) => [k, ann[k]]));
    index.manifests.push(indexEntry(target, sorted));
  }
  await writeFileAtomic(indexFile, JSON.stringify(index));
}
