// Content digests for graph vertices, in pure TypeScript (no node:crypto) so the
// frontend and graph run on any JS host. sha256 per FIPS 180-4; canonical JSON
// (sorted object keys, no whitespace, undefined members dropped) makes a vertex
// id independent of property insertion order.

import type { Vertex, VertexId } from './types';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

// UTF-8 encode without TextEncoder (not guaranteed on every neutral host).
// Lone surrogates become U+FFFD, as TextEncoder does.
export function utf8Encode(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
    if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 63);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 63);
      out[n++] = 0x80 | ((c >> 6) & 63);
      out[n++] = 0x80 | (c & 63);
    }
  }
  return out.subarray(0, n);
}

// Hosts without TextEncoder (rare) use the hand-written encoder.
const encoder: { encode(s: string): Uint8Array } | undefined =
  typeof TextEncoder === 'function' ? new TextEncoder() : undefined;

export function sha256(data: string | Uint8Array): Uint8Array {
  const msg = typeof data === 'string' ? (encoder ? encoder.encode(data) : utf8Encode(data)) : data;
  const len = msg.length;
  // Padded length: message + 0x80 + zeros + 64-bit length, multiple of 64.
  const total = ((len + 9 + 63) >>> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(msg);
  buf[len] = 0x80;
  const bitsHi = Math.floor(len / 0x20000000);
  const bitsLo = (len << 3) >>> 0;
  buf[total - 8] = bitsHi >>> 24;
  buf[total - 7] = bitsHi >>> 16;
  buf[total - 6] = bitsHi >>> 8;
  buf[total - 5] = bitsHi;
  buf[total - 4] = bitsLo >>> 24;
  buf[total - 3] = bitsLo >>> 16;
  buf[total - 2] = bitsLo >>> 8;
  buf[total - 1] = bitsLo;

  // Int32 arithmetic throughout keeps V8 on its small-integer fast path.
  let h0 = 0x6a09e667 | 0, h1 = 0xbb67ae85 | 0, h2 = 0x3c6ef372 | 0, h3 = 0xa54ff53a | 0;
  let h4 = 0x510e527f | 0, h5 = 0x9b05688c | 0, h6 = 0x1f83d9ab | 0, h7 = 0x5be0cd19 | 0;
  const w = W;
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
  }
  const out = new Uint8Array(32);
  const hs = [h0, h1, h2, h3, h4, h5, h6, h7];
  for (let i = 0; i < 8; i++) {
    const v = hs[i];
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = v >>> 16;
    out[i * 4 + 2] = v >>> 8;
    out[i * 4 + 3] = v;
  }
  return out;
}

const W = new Int32Array(64);

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function sha256Hex(data: string | Uint8Array): string {
  const d = sha256(data);
  let s = '';
  for (let i = 0; i < d.length; i++) s += HEX[d[i]];
  return s;
}

// JSON with object keys sorted and undefined members dropped, recursively.
export function canonicalJson(v: unknown): string {
  const out: string[] = [];
  writeCanonical(v, out);
  return out.join('');
}

function writeCanonical(v: unknown, out: string[]): void {
  if (v === null || v === undefined) {
    out.push('null');
  } else if (typeof v !== 'object') {
    out.push(typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v)));
  } else if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(',');
      writeCanonical(v[i], out);
    }
    out.push(']');
  } else {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    let first = true;
    out.push('{');
    for (const k of keys) {
      const x = o[k];
      if (x === undefined) continue;
      if (!first) out.push(',');
      first = false;
      out.push(JSON.stringify(k), ':');
      writeCanonical(x, out);
    }
    out.push('}');
  }
}

// Fields that describe presentation rather than the work itself stay out of
// the id, so identical work in two stages is one vertex. Proxy variables are
// left out like BuildKit leaves them out of cache keys.
const NOT_IN_ID = new Set(['id', 'name', 'location', 'proxyEnv', 'noCacheStage']);

// A vertex without its id and name, per kind (Omit over the union would keep only common keys).
export type VertexDefinition = Vertex extends infer V ? (V extends Vertex ? Omit<V, 'id' | 'name'> : never) : never;

export function vertexDigest(v: VertexDefinition | Omit<Vertex, 'id' | 'name'>): VertexId {
  return digestOfCanonical(canonicalDefinition(v));
}

// The canonical JSON a vertex id is the digest of (everything but id, name, location, proxyEnv, noCacheStage).
export function canonicalDefinition(v: VertexDefinition | Omit<Vertex, 'id' | 'name'>): string {
  const o = v as Record<string, unknown>;
  const out: string[] = ['{'];
  let first = true;
  for (const k of Object.keys(o).sort()) {
    if (NOT_IN_ID.has(k) || o[k] === undefined) continue;
    if (!first) out.push(',');
    first = false;
    out.push(JSON.stringify(k), ':');
    writeCanonical(o[k], out);
  }
  out.push('}');
  return out.join('');
}

export function digestOfCanonical(canonical: string): VertexId {
  return `sha256:${sha256Hex(canonical)}`;
}
