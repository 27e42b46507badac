// What every exporter receives: the one result of a build, made once by
// lib/builder from the solve (the export room never sees the solver), and the
// stores the exporters read and write.
import type { ContentStore } from '../content/store';
import { UsageError } from '../util/errors';
import type { BlobSource, ImageConfig, LayerBlob, Platform } from '../images/types';
import type { Snapshotter } from '../snapshot/types';
import type { LayerBlobMemo } from './layer-memo';

// One layer of a result's chain. Layers from pulled images carry their blob;
// layers made by the build carry the committed snapshot whose diff (against
// its parent) is the layer; the blob is made on export and remembered.
export interface LayerSlot {
  snapshot?: string;
  blob?: LayerBlob;
  // Set when `blob` may not be in the content store yet (a layer of a result
  // imported from a remote cache): where to fetch it when its bytes are needed.
  source?: BlobSource;
}

// How the image exporters write an image: BuildKit's exporter options
// compression, compression-level, force-compression and oci-mediatypes.
export interface ImageFormat {
  compression?: 'gzip' | 'zstd' | 'none'; // of the layers the build makes (default gzip)
  compressionLevel?: number;
  // Recompress layers that already have a blob (base image layers) to `compression`.
  forceCompression?: boolean;
  // false: Docker schema2 media types (manifest, config, layers); default true (OCI).
  ociMediaTypes?: boolean;
  // --annotation / annotation-TYPE[PLATFORM].KEY=VALUE: written into the manifests
  // (each platform's, or the one named) and the index; manifest-descriptor ones onto
  // the index's entries.
  annotations?: ImageAnnotation[];
}

export interface ImageAnnotation {
  type: 'manifest' | 'index' | 'manifest-descriptor' | 'index-descriptor';
  platform?: string; // normalized "os/arch[/variant]"; none: every platform
  key: string;
  value: string;
}

export interface BuildResult {
  // The final filesystem (null: empty, a scratch stage that added nothing).
  snapshot: string | null;
  // Bottom-to-top layers; stacked, they rebuild `snapshot`.
  layers: LayerSlot[];
  // The image config the frontend made; the image exporter adds rootfs and aligns history.
  config: ImageConfig;
  // When the result was first built (from the cache record on a hit), so a
  // fully cached rebuild dates its image the same and gets the same digest.
  created?: string;
}

// One target platform's result. A build makes one per --platform (the host's when none is named).
export interface PlatformResult {
  platform: Platform;
  result: BuildResult;
}

// What the exporters of a build receive: every platform's result, in the order
// --platform named them. Multi-platform (several platforms, or BUILDKIT_MULTI_PLATFORM=1),
// images become an index of one manifest per platform and filesystem outputs get
// one directory per platform (linux_amd64/, linux_arm_v7/), as BuildKit's exporters.
export interface BuildResults {
  platforms: PlatformResult[];
  multiPlatform: boolean;
}

export interface ExportEnv {
  stateDir: string;
  content: ContentStore;
  sn: Snapshotter;
  layerBlobs: LayerBlobMemo;
  sourceDateEpoch?: number; // SOURCE_DATE_EPOCH: image dates and file times in exported tars
}

// Progress of an export, shown under its step.
export interface ExportProgress {
  status(sub: string, s: { name: string; current?: number; total?: number; done?: boolean }): void;
}

// Whether a filesystem output (type=tar|local) puts each platform in its own
// directory: a multi-platform build does, unless platform-split=false, which BuildKit
// refuses for several platforms; one platform never does (its frontend result is a
// single ref, not a map).
export function platformDirs(results: BuildResults, platformSplit: boolean | undefined): boolean {
  if (!results.multiPlatform) return false;
  if (platformSplit === false && results.platforms.length > 1) {
    throw new UsageError('unable to export multiple platforms without map', { hint: 'drop platform-split=false, or build one --platform' });
  }
  return platformSplit !== false;
}
