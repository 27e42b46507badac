// archive/: layer tar apply (safe extraction, whiteouts) and snapshot diff → layer tar →
// compressed blob with both digests in one pass.
export { detectCompression, decompressStream, compressStream, mediaTypeFor, type Compression } from './compression';
export { applyLayer, cleanName, type ApplyOptions, type ApplyResult } from './apply';
export { overlayChanges, compareDirs, writeLayer, type Change } from './diff';
export { createLayerBlob, type LayerBlob } from './layer';
export { ParallelGzip, DeflatePool, sharedDeflatePool, type PGzipOptions } from './pgzip';
