// archive/: layer tar apply (safe extraction, whiteouts) and snapshot diff → layer tar →
// compressed blob with both digests in one pass.
export { detectCompression, decompressStream, compressStream, mediaTypeFor, detectArchiveCompression, decompressArchive, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, type ArchiveCompression, type CodecChoice, type Compression } from './compression';
export { applyLayer, cleanName, type ApplyOptions, type ApplyResult } from './apply';
export { overlayChanges, compareDirs, writeLayer, type Change } from './diff';
export { NATIVE_FORMAT, overlayFormat, type DiskFormat } from './overlay-format';
export { encodeHeader, END_OF_ARCHIVE } from './tar';
export { createLayerBlob, type LayerBlob } from './layer';
export { ParallelGzip, type PGzipOptions } from './pgzip';
export { describeCodecs, gzipCodec, zstdCodec, type GzipCodec, type ZstdCodec } from './codecs';
