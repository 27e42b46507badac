// Cache keys. A vertex's key is the digest of its definition (the vertex id,
// which the frontend computes over every field but the name) and of its
// inputs' keys, plus content the definition cannot see: the checksum of the
// selected files of a local source, the manifest digest an image reference
// resolved to. Equal keys mean equal results, in this process or any other.
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
