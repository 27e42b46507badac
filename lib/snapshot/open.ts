// Backend selection (work in progress: implementation lands in the next commit).
import { ImgError } from '../util/errors';
import type { SnapshotBackend, Snapshotter } from './types';

export async function openBackend(_stateDir: string, backend: 'auto' | SnapshotBackend): Promise<Snapshotter> {
  throw new ImgError(`snapshotter ${backend}: still being written (interface commit)`);
}
