// The real executors, one per vertex kind (ops/*), assembled for one build on
// the runtime rooms (registry, snapshots, runc). The scheduler calls them
// through the Executor interface; every result is a committed snapshot named
// by the vertex's cache key, so other processes and later builds can reuse it.
import type { ImageConfig, Platform } from '../images/types';
import { execOp } from './ops/exec';
import { fileOp } from './ops/file';
import { gitOp } from './ops/git';
import { httpOp } from './ops/http';
import { imageOp } from './ops/image';
import { localOp } from './ops/local';
import { OpEnv, type RuntimeOptions } from './ops/shared';
import type { Executors, VertexLogger } from './types';

export type { RuntimeOptions } from './ops/shared';
export type { SecretSource } from './mounts';

export interface Runtime {
  executors: Executors;
  // For the frontend: a base image's config, resolved the way the build will use it.
  resolveImageConfig(ref: string, platform: Platform, progress?: VertexLogger): Promise<{ ref: string; digest: string; config: ImageConfig } | null>;
}

export function createRuntime(o: RuntimeOptions): Runtime {
  const env = new OpEnv(o);
  const image = imageOp(env);
  const executors: Executors = {
    image,
    local: localOp(env),
    http: httpOp(env),
    git: gitOp(env),
    exec: execOp(env),
    file: fileOp(env),
  };
  return { executors, resolveImageConfig: (ref, platform, progress) => image.resolveImageConfig(ref, platform, progress) };
}
