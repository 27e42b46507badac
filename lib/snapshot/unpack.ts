// Layer unpacking (work in progress: implementation lands in the next commit).
import { ImgError } from '../util/errors';
import type { ImageConfig, Manifest } from '../images/types';
import type { Snapshotter } from './types';

export interface UnpackProgress {
  layer: number; // 0-based index in the manifest
  total: number;
  digest: string; // layer blob digest
  chainId: string;
  status: 'extracting' | 'done' | 'reused';
  bytes?: number; // uncompressed bytes applied so far (extracting/done)
}

export async function unpackLayers(
  _stateDir: string,
  _sn: Snapshotter,
  _manifest: Manifest,
  _config: ImageConfig,
  _onProgress?: (ev: UnpackProgress) => void,
): Promise<string> {
  throw new ImgError('unpackImage: still being written (interface commit)');
}
