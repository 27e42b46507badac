// Public surface of the rootless runtime (userns.ts and idmap.ts are imported directly).
export { runContainer } from './run';
export type { RunOptions, BindMount, TmpfsMount } from './run';
export { resolveUser } from './passwd';
export type { ResolvedUser } from './passwd';
export { resolveInRoot } from './mounts';
