// Test data for the codec tests: deterministic and cheap to make.

/** Alternating 4 KiB runs of text-like bytes (deflate shrinks them) and noise (it stores them). */
export function sample(size: number): Buffer {
  const b = noise(size);
  for (let i = 0; i < size; i++) {
    if (!((i >> 12) & 1)) b[i] = 'layer data, layer data; '.charCodeAt(i % 24) ^ (i % 7 === 0 ? 1 : 0);
  }
  return b;
}

/** Bytes no compressor can shrink (xorshift32). */
export function noise(size: number, seed = 0x9e3779b9): Buffer {
  const b = Buffer.alloc(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s >>> 24;
  }
  return b;
}
