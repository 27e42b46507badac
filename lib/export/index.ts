// Exporters of a build's result (see lib/builder/index.ts for how outputs pick them).
export { buildImage, nameImage, alignHistory, EMPTY_LAYER_DIFF_ID, type BuiltImage, type ImageExportOptions } from './image';
export { exportLocal } from './local';
export { writeRootfsTar } from './rootfs-tar';
export { writeDockerArchive } from './docker-archive';
export { writeOciArchive } from './oci-layout';
