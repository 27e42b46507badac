// runc invocation (work in progress: implementation lands in the next commit).
import { ImgError } from '../util/errors';
import type { RunOptions } from './run';

export async function runInBundle(_opts: RunOptions): Promise<{ exitCode: number }> {
  throw new ImgError('runContainer: runc execution is still being written (interface commit)');
}
