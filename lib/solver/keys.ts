// Cache keys. A vertex's key is the digest of its definition (the vertex id,
// which the frontend computes over every field but the name) and of its
// inputs' keys, plus content the definition cannot see: the checksum of the
// selected files of a local source, the manifest digest an image reference
// resolved to. Equal keys mean equal results, in this process or any other.
//
// Keys travel (--cache-to/--cache-from): another machine computes the same key
// for the same work, so nothing of this host goes in — no host path (a local
// source is named "context" or by its --build-context name; the directory is
// runtime data), no state-dir or snapshot id, no inode, no modification time.
// Each op's content key keeps to that: local sources and COPY hash path, type,
// permission bits and content (symlinks: target) of what they select
// (checksum.ts); ADD of a URL its bytes, name, mode and Last-Modified date;
// git the commit; images the manifest digest. Owners are not hashed because
// COPY does not carry them over (context files land as 0:0, --chown is in the
// definition). Modification times are not hashed although COPY keeps them in
// the layer: every fresh checkout would miss otherwise (BuildKit hashes no
// mtime either), and a hit returns the times of the build that made it.
import { createHash } from 'node:crypto';
import type { Ref, Vertex } from '../graph/types';

// Bump when the meaning of a result changes (layout of snapshots, records).
export const CACHE_KEY_VERSION = 'img-cache-v1';

export function cacheKey(v: Vertex, inputKeys: string[], content: string | undefined): string {
  const h = createHash('sha256');
  h.update(CACHE_KEY_VERSION + '\0');
  h.update(v.id + '\0');
  h.update(v.kind + '\0');
  v.inputs.forEach((r: Ref, i) => h.update(`in:${inputKeys[i]}:${r.output}\0`));
  if (content !== undefined) h.update(`content:${content}\0`);
  return `sha256:${h.digest('hex')}`;
}

export function keyHex(key: string): string {
  return key.startsWith('sha256:') ? key.slice(7) : key;
}
