// The local source op (the build context, --build-context directories): scans
// the selected files (.dockerignore, the COPY sources it is narrowed to) through
// the stat-keyed checksum cache and copies them into a snapshot.
// Its cache key is the checksum of the selected files; the scan is kept in
// OpEnv.contextScans for run() and for the file op's per-COPY key.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { LocalSourceVertex } from '../../graph/types';
import { loadAddon } from '../../host/index';
import { NotFoundError, UsageError } from '../../util/errors';
import { hasWildcards } from '../../util/glob';
import { ChecksumCache, includeMatcher, scanContext, SELECT_ALL, type ContextFile } from '../checksum';
import type { Executor } from '../types';
import type { OpEnv } from './shared';

export function localOp(env: OpEnv): Executor<LocalSourceVertex> {
  const { o } = env;
  const checksumCaches = new Map<string, Promise<ChecksumCache>>(); // context dir → its cache

  function checksumCache(dir: string): Promise<ChecksumCache> {
    let p = checksumCaches.get(dir);
    if (!p) {
      p = ChecksumCache.open(o.stateDir, dir);
      checksumCaches.set(dir, p);
    }
    return p;
  }

  return {
    async contentKey(v, ctx) {
      const dir = localDir(o.localDirs, v);
      let selector = o.selectorFor ? o.selectorFor(v.source, v) : SELECT_ALL;
      if (v.includePatterns && v.includePatterns.length) {
        const follow = v.followPaths?.length ? await followLinks(dir, v.followPaths) : [];
        selector = { ...selector, included: includeMatcher([...v.includePatterns, ...follow]) };
      }
      const cache = await checksumCache(dir);
      const name = `transferring ${v.source}`;
      ctx.progress.status('transfer', { name: `${name}:` });
      const scan = await scanContext(dir, selector, cache, (files, bytes) => ctx.progress.status('transfer', { name: `${name}: ${files} files`, current: bytes }));
      env.contextScans.set(v.id, scan.files);
      ctx.progress.status('transfer', { name: `${name}: ${scan.files.length} files`, current: scan.bytes, done: true });
      return `local:${scan.digest}`;
    },

    async run(v, ctx) {
      const files = env.contextScans.get(v.id);
      if (!files) throw new Error(`local source ${v.name} was not scanned`);
      const src = localDir(o.localDirs, v);
      let addon: ReturnType<typeof loadAddon> | null = null;
      try {
        addon = loadAddon();
      } catch {
        addon = null;
      }
      const snapshot = await env.produce(null, `local ${v.source}`, ctx, async (root) => {
        // Directories first (they come sorted, parents first), then files in parallel.
        const dirs: ContextFile[] = [];
        const leaves: ContextFile[] = [];
        for (const f of files) (f.type === 'dir' ? dirs : leaves).push(f);
        // Owner-writable while filling; the whole mode (setgid, sticky, group/other
        // write, which mkdir's mode and the umask would drop) is set at the end.
        for (const d of dirs) await fsp.mkdir(path.join(root, d.rel), { mode: 0o700, recursive: true });
        let next = 0;
        const worker = async () => {
          while (next < leaves.length) {
            ctx.signal.throwIfAborted();
            const f = leaves[next++];
            const dst = path.join(root, f.rel);
            const t = new Date(f.mtimeMs);
            if (f.type === 'symlink') {
              await fsp.symlink(f.linkTarget!, dst);
              await fsp.lutimes(dst, t, t); // links keep their times too, as in BuildKit's context transfer
              continue;
            }
            const from = path.join(src, f.rel);
            if (addon) await addon.copyFile(from, dst, f.mode & 0o7777);
            else await fsp.copyFile(from, dst);
            await fsp.chmod(dst, f.mode & 0o7777);
            await fsp.utimes(dst, t, t);
          }
        };
        await Promise.all(Array.from({ length: Math.min(16, leaves.length) }, worker));
        // Directory modes and mtimes last (deepest first): creating entries changed the times.
        for (const d of dirs.reverse()) {
          const dst = path.join(root, d.rel);
          await fsp.chmod(dst, d.mode & 0o7777);
          const t = new Date(d.mtimeMs);
          await fsp.utimes(dst, t, t);
        }
      });
      return { snapshot, layers: [{ snapshot }] };
    },
  };
}

function localDir(localDirs: Record<string, string>, v: LocalSourceVertex): string {
  const dir = localDirs[v.source];
  if (!dir) {
    if (v.source === 'context') {
      throw new UsageError('this Dockerfile copies from the build context, but there is none (Dockerfile given on stdin)', {
        hint: 'pass a context directory: img build -f - DIR < Dockerfile',
      });
    }
    throw new NotFoundError(`build context "${v.source}" is not defined`, { hint: `pass it with --build-context ${v.source}=PATH` });
  }
  return dir;
}

// BuildKit's FollowPaths: a symlink on a named context path (the path itself or a
// parent directory) brings its target along, so `COPY link /x` finds what the link
// points to. Literal paths only; wildcard sources are matched as they are.
async function followLinks(dir: string, paths: string[]): Promise<string[]> {
  const out = new Set<string>();
  const visit = async (rel: string, depth: number): Promise<void> => {
    const parts = rel.split('/').filter((p) => p && p !== '.');
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      const next = cur ? `${cur}/${parts[i]}` : parts[i];
      const st = await fsp.lstat(path.join(dir, next)).catch(() => null);
      if (!st) return;
      if (st.isSymbolicLink()) {
        if (depth >= 40) return; // a loop: leave it to the copy to report
        const target = await fsp.readlink(path.join(dir, next));
        // Resolved inside the context: absolute targets and ".." stop at its root.
        const resolved = path.posix.normalize(path.posix.join('/', target.startsWith('/') ? '' : cur, target, ...parts.slice(i + 1))).slice(1);
        if (resolved) out.add(resolved);
        return visit(resolved, depth + 1);
      }
      cur = next;
    }
  };
  for (const p of paths) if (!hasWildcards(p)) await visit(p, 0);
  return [...out];
}
