// Exporters of a build's result (see lib/builder/index.ts for how outputs pick them):
// each takes the build's results (result.ts: one BuildResult per platform) and the stores (ExportEnv).
export type { BuildResult, BuildResults, ExportEnv, ExportProgress, ImageAnnotation, ImageFormat, LayerSlot, PlatformResult } from './result';
export { LayerBlobMemo } from './layer-memo';
export { buildImage, exportImage, exportLayers, fetchLayers, prepareLayer, imageOf, imageTargetOf, nameImage, alignHistory, layerMediaType, EMPTY_LAYER_DIFF_ID, type BuiltImage, type BuiltTarget, type ImageExportOptions } from './image';
export { exportArchive, exportLayoutDir } from './archive';
export { exportLocal } from './local';
export { writeRootfsTar } from './rootfs-tar';
export { writeDockerArchive } from './docker-archive';
export { writeOciArchive } from './oci-layout';
