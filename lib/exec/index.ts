// Public surface of the rootless runtime (except userns/idmap, owned by lib/host's team).
export { runContainer } from './run';
export type { RunOptions, BindMount, TmpfsMount } from './run';
export { resolveUser } from './passwd';
export type { ResolvedUser } from './passwd';
export { resolveInRoot } from './mounts';
