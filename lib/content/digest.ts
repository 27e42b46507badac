// Digest helpers shared by the content store and its callers.
import { createHash } from 'node:crypto';
import { ContentError } from '../util/errors';
import type { Digest } from '../images/types';

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return SHA256_RE.test(s);
}

// Validates a digest string; anything else (other algorithms, bad hex) is a user-visible error.
export function parseDigest(s: string): Digest {
  if (!isDigest(s)) {
    throw new ContentError(`invalid digest "${s}"`, { hint: 'digests look like sha256:<64 lowercase hex characters>' });
  }
  return s;
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
