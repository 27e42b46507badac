// Executor for file vertices: COPY/ADD (copy), WORKDIR (mkdir), heredoc files
// (mkfile), rm and symlink, applied to a mounted, writable destination rootfs.
//
// Semantics follow BuildKit's file operations as the Dockerfile frontend uses them:
// - a source directory's *contents* are copied (dirCopyContents), not the dir itself;
// - a single file goes to `dest` itself unless dest ends with '/' or is an existing
//   directory, in which case it goes to dest/<basename>;
// - wildcards match per path component (`*` never crosses '/');
// - every path on both sides is resolved inside its root (symlinks followed but
//   clamped to the root), so a hostile link cannot redirect a write outside;
// - copies preserve modes, times, symlinks and hard links within one action;
//   ownership is the --chown owner, else the input's default (0:0 for the build
//   context), else the source's own.
//
// The executor (fileOp) mounts every input but the base read-only and applies the
// actions to a new snapshot on the base. Its content key: a COPY from a local
// source is keyed by the checksum of just the files it reads, not the whole context.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ChownSpec, FileAction, FileVertex } from '../../graph/types';
import { applyLayer, compareDirs, decompressArchive, detectArchiveCompression, writeLayer, type ArchiveCompression } from '../../archive/index';
import { idsMapped, OWNER_XATTR, setOwner } from '../../archive/owner';
import { copyXattrs } from '../../archive/sys';
import { parseGroup, parsePasswd } from '../../exec/passwd';
import { loadAddon, type NativeAddon } from '../../host/index';
import type { Mounted, StoredDir } from '../../snapshot/types';
import { ImgError, isErrno, StepError } from '../../util/errors';
import { compileGlob, hasWildcards, type Glob } from '../../util/glob';
import { debug } from '../../util/log';
import { resolveInRoot } from '../../util/rootpath';
import { emptyDir } from '../mounts';
import type { Executor } from '../types';
import { chainOf, type OpEnv } from './shared';

export interface Owner {
  uid: number;
  gid: number;
}

export interface FileOpOptions {
  destRoot: string;
  actions: FileAction[];
  inputRoot(index: number): string;
  resolveOwner(chown: ChownSpec): Promise<Owner>;
  // Owner of copied files when no --chown is given; undefined keeps the source's owner.
  defaultOwner?(index: number): Owner | undefined;
  // Whether every entry of the input already has defaultOwner's owner (a local source's
  // snapshot, written by img as namespace root): a whole directory then copies as it is.
  ownedAsDefault?(index: number): boolean;
  // Extracts a local archive for ADD (attemptUnpack). Returns false when `file`
  // is not an archive, so it is copied as a plain file instead.
  unpackArchive?(file: string, destDir: string, owner: Owner | undefined, makeDest: () => Promise<void>): Promise<boolean>;
  // Applied to mtimes of files created from scratch (mkdir/mkfile), for reproducible builds.
  sourceDateEpoch?: number;
  // The directories storing input `index`'s committed, immutable files (Snapshotter.storeDirs),
  // for a whole-directory copy to hard-link from; none: copy.
  storeDirs?(index: number): Promise<StoredDir[]>;
  // The directories storing the destination's base snapshot (Snapshotter.storeDirs).
  destStoreDirs?(): Promise<StoredDir[]>;
  // Told the snapshots whose inodes a copy links into the destination (StoredDir.shares).
  linkedFrom?(shares: string[]): void;
  // Runs `fill` on the destination snapshot's own directory (the rootfs's paths; an
  // overlay's upper dir) once the rootfs is unmounted: hard links cannot cross the mount.
  // Only for the op's last write, so nothing reads the rootfs after it.
  inOwnDir?(fill: (ownRoot: string) => Promise<void>): void;
}

type CopyAction = Extract<FileAction, { op: 'copy' }>;

// ---------------------------------------------------------------- executor

export function fileOp(env: OpEnv): Executor<FileVertex> {
  return {
    // COPY from a local source: key by the checksum of just the files the
    // actions read, so editing one file reruns only the COPYs that read it.
    async contentKey(v, ctx) {
      const parts: string[] = [];
      const replaced: number[] = [];
      for (const [i, src] of ctx.inputVertices.entries()) {
        if (src.kind !== 'local') continue;
        const scan = env.contextScans.get(src.id);
        if (!scan) continue;
        const pats: string[] = [];
        for (const a of v.actions) if (a.op === 'copy' && a.src === i) pats.push(...a.srcPaths);
        parts.push(`${i}=${src.id}:${await scan.digestOf(pats.map((p) => p.replace(/^\/+/, '') || '.'))}`);
        replaced.push(i);
      }
      if (replaced.length === 0) return undefined;
      return { content: `copy-sources:${parts.join(',')}`, replaceInputs: replaced };
    },

    async run(v, ctx) {
      const base = v.base >= 0 ? ctx.inputs[v.base] : undefined;
      const mounts: Mounted[] = [];
      const roots = new Map<number, string>();
      const linkedFrom = new Set<string>();
      const link = Boolean(base?.snapshot) && linked(v);
      // Mount every other input read-only for the duration of the actions (the
      // base too for --link, which writes elsewhere but reads the base's /etc/passwd),
      // all at once and while the destination is prepared and mounted: a chain of
      // COPY --from steps waits for these fixed costs one step after another.
      const inputsMounted = Promise.allSettled(
        ctx.inputs.map(async (input, i) => {
          if (i === v.base && !link) return;
          if (!input.snapshot) {
            roots.set(i, await emptyDir(env.o.stateDir));
            return;
          }
          const m = await env.sn.mount(input.snapshot);
          mounts.push(m);
          roots.set(i, m.rootfs);
        }),
      ).then((all) => {
        for (const r of all) if (r.status === 'rejected') throw r.reason;
      });
      inputsMounted.catch(() => undefined); // awaited where the actions need the inputs
      try {
        const localInput = (i: number) => {
          const kind = ctx.inputVertices[i]?.kind;
          return kind === 'local' || kind === 'http' || kind === 'git';
        };
        const apply = (destRoot: string, ownersFrom: string, inOwnDir?: FileOpOptions['inOwnDir']) =>
          applyFileActions({
            destRoot,
            actions: v.actions,
            inputRoot: (i) => {
              const r = roots.get(i) ?? (i === v.base ? destRoot : undefined);
              if (!r) throw new Error(`file op input ${i} is not mounted`);
              return r;
            },
            resolveOwner: (chown) => ownerFor(ownersFrom, chown, (msg) => ctx.progress.log(`WARN: ${msg}\n`, 2)),
            // Files from the build context belong to root in the image, as with docker.
            defaultOwner: (i) => (localInput(i) ? { uid: 0, gid: 0 } : undefined),
            ownedAsDefault: (i) => ctx.inputVertices[i]?.kind === 'local' && process.geteuid?.() === 0 && process.getegid?.() === 0,
            unpackArchive,
            sourceDateEpoch: env.o.sourceDateEpoch,
            storeDirs: async (i) => {
              const snap = ctx.inputs[i]?.snapshot;
              return snap ? env.sn.storeDirs(snap) : [];
            },
            destStoreDirs: async () => (base?.snapshot ? env.sn.storeDirs(base.snapshot) : []),
            linkedFrom: (shares) => shares.forEach((s) => linkedFrom.add(s)),
            inOwnDir,
          });
        if (link && base?.snapshot) {
          // COPY --link: BuildKit copies onto an empty filesystem and merges that onto the
          // stage as a layer — so the destination's symlinks are not followed, and the
          // parent directories the copy creates (0755, root or --chown) replace the
          // stage's own in the result.
          await inputsMounted;
          const baseRoot = roots.get(v.base)!;
          const alone = await env.sn.prepare(null, `${v.name} (linked)`);
          try {
            const m = await env.sn.mount(alone);
            try {
              await apply(m.rootfs, baseRoot);
              const snapshot = await env.produce(base.snapshot, v.name, ctx, (root) =>
                applyLayer(writeLayer(compareDirs(null, m.rootfs), m.rootfs), { root, sameOwner: true }).then(() => undefined),
              );
              return { snapshot, layers: chainOf(base, snapshot) };
            } finally {
              await m.release();
            }
          } finally {
            await env.sn.remove(alone).catch((e) => debug(`removing ${alone}: ${(e as Error).message}`));
          }
        }
        const fills: ((ownRoot: string) => Promise<void>)[] = [];
        const snapshot = await env.produce(
          base?.snapshot ?? null,
          v.name,
          ctx,
          async (destRoot) => {
            await inputsMounted;
            await apply(destRoot, destRoot, (fill) => fills.push(fill));
          },
          async (active) => {
            if (fills.length === 0) return;
            const own = await env.sn.diffRoot(active);
            try {
              for (const fill of fills) await fill(own.rootfs);
            } finally {
              await own.release();
            }
            return { linkedFrom: [...linkedFrom] };
          },
        );
        return { snapshot, layers: chainOf(base, snapshot) };
      } finally {
        await inputsMounted.catch(() => undefined); // settled: every mount made is in `mounts`
        for (const m of mounts) await m.release().catch(() => undefined);
      }
    },
  };
}

// BuildKit's frontend links a COPY/ADD only without --chmod (else it is a plain copy).
function linked(v: FileVertex): boolean {
  return v.link === true && v.actions.every((a) => a.op !== 'copy' || a.chmod === undefined);
}

// --chown as BuildKit's file op reads it (its readUser): a name takes its uid and primary
// gid from the destination's /etc/passwd, a number is the uid and the gid at once
// (whatever passwd says), and a group — a number, or a name from /etc/group — replaces
// the gid. A name that is not there is no error in BuildKit: an unknown user leaves
// 0:0, an unknown group the user's gid. img does the same and says so in the step's log.
export async function ownerFor(root: string, chown: ChownSpec, note: (msg: string) => void = () => {}): Promise<Owner> {
  const numeric = (s: string) => /^[0-9]+$/.test(s) && Number(s) <= 0xffffffff;
  const read = async (file: string) => {
    try {
      return await fsp.readFile(await resolveInRoot(root, file, true), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return null;
      throw err;
    }
  };
  const user = chown.user ?? '0';
  let uid = 0;
  let gid = 0;
  if (numeric(user)) {
    uid = gid = Number(user);
  } else {
    const entry = parsePasswd(await read('/etc/passwd')).find((p) => p.name === user);
    if (entry) [uid, gid] = [entry.uid, entry.gid];
    else note(`--chown: no user ${user} in /etc/passwd: owner 0:0, as BuildKit`);
  }
  if (chown.group !== undefined) {
    if (numeric(chown.group)) {
      gid = Number(chown.group);
    } else {
      const g = parseGroup(await read('/etc/group')).find((x) => x.name === chown.group);
      if (g) gid = g.gid;
      else note(`--chown: no group ${chown.group} in /etc/group: group ${gid}, as BuildKit`);
    }
  }
  return { uid, gid };
}

// ADD of a local file: extracted when it is a tar (plain, gzip, zstd, bzip2 or xz,
// told by its first bytes, not its name) — into destDir, made by makeDest only then;
// false when it is not, and the file is copied as is (BuildKit's isArchivePath).
export async function unpackArchive(file: string, destDir: string, owner: Owner | undefined, makeDest: () => Promise<void>): Promise<boolean> {
  const c = detectArchiveCompression(await firstBytes(fs.createReadStream(file)));
  if (!looksLikeTar(await firstBytes(openArchive(file, c)))) return false;
  await makeDest();
  await applyLayer(openArchive(file, c), {
    root: destDir,
    sameOwner: true,
    idMap: owner ? () => [owner.uid, owner.gid] : undefined,
  });
  return true;
}

function openArchive(file: string, c: ArchiveCompression): NodeJS.ReadableStream {
  const src = fs.createReadStream(file);
  if (c === 'none') return src;
  const out = decompressArchive(c);
  out.once('close', () => src.destroy()); // stopping early must not leave the file open
  return src.pipe(out);
}

// The first 512 bytes of a stream (fewer when it is shorter or cannot be read), then closes it.
async function firstBytes(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (n >= 512) break;
    }
  } catch {
    // not decompressible: not an archive
  } finally {
    (stream as NodeJS.ReadableStream & { destroy?(): void }).destroy?.();
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

// A tar header: ustar magic, or (old v7 tars) a checksum that adds up, as Go's tar reader accepts.
function looksLikeTar(h: Buffer): boolean {
  if (h.length < 512 || h.every((b) => b === 0)) return false;
  if (h.toString('latin1', 257, 262) === 'ustar') return true;
  const want = parseInt(h.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === want;
}

export async function applyFileActions(opts: FileOpOptions): Promise<void> {
  for (const [i, action] of opts.actions.entries()) {
    switch (action.op) {
      case 'copy':
        await copy(opts, action, i === opts.actions.length - 1);
        break;
      case 'mkdir':
        await mkdir(opts, action.path, action.mode, action.makeParents, action.chown);
        break;
      case 'mkfile':
        await mkfile(opts, action.path, action.mode, action.data, action.chown);
        break;
      case 'rm':
        await rm(opts.destRoot, action.path, action.allowNotFound, action.allowWildcard);
        break;
      case 'symlink':
        await symlink(opts, action.oldpath, action.newpath, action.chown);
        break;
    }
  }
}

// ---------------------------------------------------------------- copy

interface SourceMatch {
  hostPath: string; // resolved path on the host
  relPath: string; // path relative to the source root as matched ("a/b.txt")
}

// `lastAction`: nothing in this op writes after it.
async function copy(opts: FileOpOptions, a: CopyAction, lastAction: boolean): Promise<void> {
  const srcRoot = opts.inputRoot(a.src);
  const owner = a.chown ? await opts.resolveOwner(a.chown) : opts.defaultOwner?.(a.src);
  const chmod = a.chmod ? parseChmod(a.chmod) : undefined;
  const exclude = a.excludePatterns?.length ? a.excludePatterns.map(compileExclude) : [];

  if (a.parents && a.includePatterns?.length) return copyParents(opts, a, owner, chmod, exclude);
  const matches: SourceMatch[] = [];
  for (const src of a.srcPaths) {
    const found = await matchSources(srcRoot, src, a);
    if (found.length === 0 && !(a.allowWildcard && hasWildcards(src) && a.allowEmptyWildcard)) {
      throw new ImgError(`failed to copy: "${src}": not found`, {
        hint: 'check the source path: it is relative to the build context (or the --from stage root) and must not be excluded by .dockerignore',
      });
    }
    // --exclude never drops a match itself (fsutil filters below the copied source only):
    // `ADD --exclude=* dir* /6` makes an empty /6, as BuildKit's testExcludedFilesOnCopy.
    matches.push(...found);
  }

  // Only a trailing "/" or an existing directory makes the destination a directory
  // (BuildKit: one copy per match; `COPY f*.txt /single.txt` matching one file makes a file).
  const destIsDir = a.dest.endsWith('/');
  const destPath = await resolveInRoot(opts.destRoot, a.dest, true);
  // Directories the copy creates (missing parents, a directory copy's destination) take
  // the --chmod mode too, as BuildKit since fsutil#228 (its testCopyChmod: `COPY
  // --chmod=777 foo /parent/foo` makes /parent 0777); 0755 without --chmod.
  const dirMode = chmod ? chmod(0o755, true) : 0o755;
  const copier = new TreeCopier(opts.destRoot, owner, chmod, exclude);

  for (const [matchNo, m] of matches.entries()) {
    const [st, lst] = await Promise.all([fsp.stat(m.hostPath).catch(() => null), fsp.lstat(m.hostPath)]);
    const isDir = (a.followSymlinks ? st : lst)?.isDirectory() ?? false;
    let target: string;
    if (isDir && a.dirCopyContents) {
      target = destPath;
      // BuildKit (fsutil's prepareTargetDir) creates a missing destination up front, 0755
      // (the --chmod mode with one) and owned by the --chown owner or root, so the source
      // directory's own mode and owner never reach it: they apply to what is inside.
      // Without a trailing "/" it keeps the source's times.
      const last = lastAction && matchNo === matches.length - 1;
      if (a.createDestPath && !(await exists(target))) {
        const slash = a.dest.endsWith('/');
        await ensureDir(opts.destRoot, path.dirname(target), owner, opts.sourceDateEpoch, dirMode);
        if (await copyWholeDir(opts, a, m.hostPath, target, owner, chmod, slash, last)) continue;
        await ensureDir(opts.destRoot, target, owner ?? ROOT, opts.sourceDateEpoch, dirMode);
        if (!slash && st) copier.keepTimes(target, st);
      } else if (last && (await linkIntoEmptyDir(opts, a, m.hostPath, target, owner, chmod))) {
        continue;
      }
    } else {
      const destStat = await fsp.stat(destPath).catch(() => null);
      const intoDir = destIsDir || destStat?.isDirectory() === true;
      // Named as matched (a followed symlink keeps its own name, not its target's).
      target = intoDir ? path.join(destPath, path.posix.basename(m.relPath) || path.basename(m.hostPath)) : destPath;
    }
    // (The root has no parent to make: `COPY dir /`.)
    if (a.createDestPath && target !== opts.destRoot) await ensureDir(opts.destRoot, path.dirname(target), owner, opts.sourceDateEpoch, dirMode);

    if (a.attemptUnpack && !isDir && lst.isFile() && opts.unpackArchive) {
      const dir = await resolveInRoot(opts.destRoot, a.dest, true);
      const makeDest = () => ensureDir(opts.destRoot, dir, owner, opts.sourceDateEpoch);
      if (await opts.unpackArchive(m.hostPath, dir, a.chown ? owner : undefined, makeDest)) continue;
    }
    if (isDir) {
      await copier.copyDirContents(m.hostPath, target, m.relPath, true, matchNo);
    } else {
      await copier.copyEntry(m.hostPath, target, a.followSymlinks, matchNo);
    }
  }
  await copier.finish();
}

// A directory copied whole to a new destination with nothing to change on the way is one
// threaded native tree copy (addon/copytree.cc: modes, times, links, xattrs as they are)
// instead of seven syscalls per file from JavaScript: `COPY . /app` of a large context,
// `COPY --from=build /out /out`. Nothing to change: every entry keeps its owner (no
// --chown, or the owner every entry of a local source has already), no --chmod, --exclude
// or --parents. The new top directory then gets what the file-by-file copy gives it: 0755,
// root's (or the --chown owner's), the source's times without a trailing "/", the time of
// the copy (or SOURCE_DATE_EPOCH) with one.
//
// As the op's last write, the tree's files are hard-linked from the source snapshot's
// stored inodes rather than copied: they are immutable and already have exactly the
// owner, mode, times and xattrs the copy must produce (the addon checks each). Links
// cannot cross a mount, so the top directory is made through the mounted rootfs (an
// overlay marks it opaque where a lower layer had the path) and filled in the snapshot's
// own directory once that is unmounted (opts.inOwnDir).
async function copyWholeDir(
  opts: FileOpOptions,
  a: CopyAction,
  src: string,
  target: string,
  owner: Owner | undefined,
  chmod: unknown,
  slash: boolean,
  last: boolean,
): Promise<boolean> {
  const addon = treeCopier(opts, a, owner, chmod);
  const st = await fsp.lstat(src);
  if (!addon || !st.isDirectory()) return false; // (a followed link: file by file)
  const top = owner ?? ROOT;
  const finishTop = async (dir: string) => {
    await fsp.chmod(dir, 0o755);
    await giveTo(dir, top, 'dir');
    const t = slash ? (opts.sourceDateEpoch ?? new Date()) : st.mtime;
    await fsp.utimes(dir, slash ? t : st.atime, t);
  };
  const linkFrom = last ? await storedSources(opts, a, src, addon) : null;
  if (linkFrom) {
    await fsp.mkdir(target, { mode: 0o700 });
    fillLater(opts, a, addon, src, target, linkFrom, finishTop);
    return true;
  }
  const copied = await addon.copyTree(src, target);
  debug(`copy: ${a.srcPaths.join(' ')} as one tree copy (${copied.files} files, ${copied.bytes} bytes)`);
  await finishTop(target);
  return true;
}

// `WORKDIR /app` then `COPY . .`: a directory copied whole into an existing, empty one (the
// op's last write, nothing to change on the way) links its stored files too. The directory
// keeps its own owner, mode and xattrs, and gets the time of the copy, as when the files
// are written through the rootfs. It must be empty in every layer below as well (no
// whiteouts or entries an overlay hides), so its own directory holds exactly what the
// rootfs would show; a metadata-only change through the mount (its own times) copies it
// and its parents up first.
async function linkIntoEmptyDir(opts: FileOpOptions, a: CopyAction, src: string, target: string, owner: Owner | undefined, chmod: unknown): Promise<boolean> {
  const addon = treeCopier(opts, a, owner, chmod);
  const [sst, tst] = await Promise.all([fsp.lstat(src), fsp.lstat(target).catch(() => null)]);
  if (!addon || !sst.isDirectory() || !tst?.isDirectory() || (await fsp.readdir(target)).length > 0) return false;
  const rel = path.relative(opts.destRoot, target);
  for (const lower of (await opts.destStoreDirs?.()) ?? []) {
    const names = await fsp.readdir(path.join(lower.dir, rel)).catch(() => [] as string[]);
    if (names.length > 0) return false;
  }
  const linkFrom = await storedSources(opts, a, src, addon);
  if (!linkFrom) return false;
  await fsp.utimes(target, tst.atime, tst.mtime);
  fillLater(opts, a, addon, src, target, linkFrom, async () => {});
  return true;
}

// The native tree copy, when the copy changes nothing on the way: every entry keeps its
// owner (no --chown, or the owner every entry of a local source has already), no
// --chmod, --exclude or --parents. Null: copy file by file.
function treeCopier(opts: FileOpOptions, a: CopyAction, owner: Owner | undefined, chmod: unknown): NativeAddon | null {
  if (chmod || a.excludePatterns?.length || a.parents) return null;
  if (owner) {
    const def = opts.defaultOwner?.(a.src);
    if (!opts.ownedAsDefault?.(a.src) || !def || def.uid !== owner.uid || def.gid !== owner.gid) return null;
  }
  try {
    const addon = loadAddon();
    return typeof addon.copyTree === 'function' ? addon : null;
  } catch {
    return null;
  }
}

// The stored directories of the source input at `src`'s path, to hard-link from, and which
// of them may be: not one whose inodes the destination's chain holds already (one image
// would hold one inode at two paths, which a tree walker takes for a hard link). Null when
// none may, the input has no committed snapshot, or the destination cannot be filled unmounted.
interface LinkSources {
  dirs: string[];
  linkable: boolean[];
}

async function storedSources(opts: FileOpOptions, a: CopyAction, src: string, addon: NativeAddon): Promise<LinkSources | null> {
  if (!opts.inOwnDir || !opts.storeDirs || !addon.copyTreeLinks) return null;
  const stored = await opts.storeDirs(a.src);
  const held = new Set(((await opts.destStoreDirs?.()) ?? []).flatMap((d) => d.shares));
  const linkable = stored.map((d) => !d.shares.some((s) => held.has(s)));
  if (!linkable.includes(true)) return null;
  opts.linkedFrom?.(stored.filter((_, i) => linkable[i]).flatMap((d) => d.shares));
  const srcRel = path.relative(opts.inputRoot(a.src), src);
  return { dirs: stored.map((d) => path.join(d.dir, srcRel)), linkable };
}

// Fills `target` (made through the rootfs) in the snapshot's own directory once unmounted.
function fillLater(
  opts: FileOpOptions,
  a: CopyAction,
  addon: NativeAddon,
  src: string,
  target: string,
  from: LinkSources,
  finishTop: (dir: string) => Promise<void>,
): void {
  const rel = path.relative(opts.destRoot, target);
  opts.inOwnDir!(async (ownRoot) => {
    const dir = path.join(ownRoot, rel);
    const copied = await addon.copyTree(src, dir, { linkFrom: from.dirs, linkable: from.linkable, into: true });
    debug(`copy: ${a.srcPaths.join(' ')} as one tree copy (${copied.files} files: ${copied.linked ?? 0} linked, ${copied.bytes} bytes copied)`);
    await finishTop(dir);
  });
}

// `COPY --parents a/b*/./c/**/e /out/` as BuildKit's LLB has it: the source is the
// directory before the pivot (wildcards resolved: each match in turn, as fsutil's
// ResolveWildcards), the rest an include pattern ('**' as moby/patternmatcher reads it).
// Whatever under a source directory the pattern matches is copied to the same relative
// path under the destination; the directories on the way are made like their sources
// (fsutil's createParentDirs), only where something is copied. No pivot: the source is
// the root and the pattern keeps the whole path.
async function copyParents(opts: FileOpOptions, a: CopyAction, owner: Owner | undefined, chmod: ((mode: number, isDir: boolean) => number) | undefined, exclude: Glob[]): Promise<void> {
  const srcRoot = opts.inputRoot(a.src);
  const include = a.includePatterns!.map((p) => compileGlob(path.posix.normalize('/' + p).slice(1) || '.', { doubleStar: true }));
  const dest = await resolveInRoot(opts.destRoot, a.dest, true);
  const copier = new TreeCopier(opts.destRoot, owner, chmod, exclude);
  const dirMode = chmod ? chmod(0o755, true) : 0o755;
  let found = 0;
  for (const dir of a.srcPaths) {
    const pivots = await matchSources(srcRoot, dir, { ...a, parents: false });
    if (pivots.length === 0 && !(a.allowWildcard && hasWildcards(dir) && a.allowEmptyWildcard)) {
      throw new ImgError(`failed to copy: "${dir}": not found`, { hint: 'check the path before /./ in COPY --parents' });
    }
    for (const [group, pivot] of pivots.entries()) {
      if (!(await fsp.stat(pivot.hostPath)).isDirectory()) continue;
      // As fsutil's prepareTargetDir: the destination is made for every source directory.
      if (a.createDestPath) await ensureDir(opts.destRoot, dest, owner, opts.sourceDateEpoch, dirMode);
      const walk = async (hostDir: string, rel: string, destDir: string): Promise<void> => {
        const entries = await fsp.readdir(hostDir, { withFileTypes: true });
        entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
        for (const e of entries) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (isExcluded(exclude, r)) continue;
          const src = path.join(hostDir, e.name);
          const target = path.join(destDir, e.name);
          if (include.some((g) => g.matchesPathOrParent(r))) {
            found++;
            await makeParents(hostDir, rel);
            if (e.isDirectory()) await copier.copyDirContents(src, target, r, false, group, '');
            else await copier.copyEntry(src, target, false, group);
          } else if (e.isDirectory()) {
            await walk(src, r, target);
          }
        }
      };
      // The directories between the source and an included entry: made once, like their sources.
      const made = new Set<string>();
      const makeParents = async (hostDir: string, rel: string): Promise<void> => {
        if (!rel || made.has(rel)) return;
        await makeParents(path.dirname(hostDir), rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
        await copier.parentDir(hostDir, path.join(dest, rel));
        made.add(rel);
      };
      await walk(pivot.hostPath, '', dest);
    }
  }
  // Nothing matched a path without wildcards: name it as written (img's check; a typo
  // would otherwise copy nothing).
  if (found === 0 && !a.srcPaths.some(hasWildcards) && !a.includePatterns!.some(hasWildcards)) {
    const dir = path.posix.normalize('/' + a.srcPaths[0]).slice(1);
    throw new ImgError(`failed to copy: "${dir ? `${dir}/./` : ''}${a.includePatterns![0]}": not found`, {
      hint: 'check the source path: it is relative to the build context (or the --from stage root) and must not be excluded by .dockerignore',
    });
  }
  await copier.finish();
}

async function matchSources(srcRoot: string, src: string, a: CopyAction): Promise<SourceMatch[]> {
  const clean = path.posix.normalize('/' + src).slice(1);
  if (!(a.allowWildcard && hasWildcards(clean))) {
    const hostPath = await resolveInRoot(srcRoot, clean, a.followSymlinks);
    try {
      await fsp.lstat(hostPath);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
      throw err;
    }
    return [{ hostPath, relPath: clean }];
  }
  // Component-wise glob: expand one path component at a time.
  let current: { rel: string }[] = [{ rel: '' }];
  const parts = clean.split('/').filter(Boolean);
  // As BuildKit: the components before the first wildcard are a plain path; from
  // there on each is a filepath.Match pattern (so an escape there is an escape).
  let globbing = false;
  for (const part of parts) {
    globbing ||= hasWildcards(part);
    const next: { rel: string }[] = [];
    const glob = globbing && (hasWildcards(part) || part.includes('\\')) ? compileGlob(part) : undefined;
    for (const c of current) {
      const dirHost = await resolveInRoot(srcRoot, c.rel || '/', true);
      if (!glob) {
        const rel = c.rel ? `${c.rel}/${part}` : part;
        if (await exists(path.join(dirHost, part))) next.push({ rel });
        continue;
      }
      let names: string[];
      try {
        names = await fsp.readdir(dirHost);
      } catch {
        continue;
      }
      for (const n of names.sort()) if (glob.matches(n)) next.push({ rel: c.rel ? `${c.rel}/${n}` : n });
    }
    current = next;
  }
  const out: SourceMatch[] = [];
  for (const c of current) {
    out.push({ hostPath: await resolveInRoot(srcRoot, c.rel, a.followSymlinks), relPath: c.rel });
  }
  return out;
}

// Copies trees with bounded parallelism for file data; directory metadata is applied
// after children (so their mtimes stick), hard links are recreated within one action.
class TreeCopier {
  private readonly links = new Map<string, Promise<string>>(); // "group:dev:ino" → first dest path, once copied
  private readonly dirMeta: { src: string; dest: string; st: fs.Stats; timesOnly?: boolean }[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private static readonly PARALLEL = 16;

  constructor(
    private readonly destRoot: string,
    private readonly owner: Owner | undefined,
    private readonly chmod: ((mode: number, isDir: boolean) => number) | undefined,
    private readonly exclude: Glob[],
  ) {}

  // `group`: hard links are kept within one group only — one source match, as BuildKit
  // copies each match of a wildcard on its own.
  async copyDirContents(srcDir: string, destDir: string, relBase: string, isTop: boolean, group: number, topBase = relBase): Promise<void> {
    const st = await fsp.stat(srcDir);
    const existing = await fsp.lstat(destDir).catch(() => null);
    // As BuildKit: a file or symlink where the copy has a directory stops the copy
    // (replacing it would, say, turn a merged-/usr /lib link into a directory).
    if (existing && !existing.isDirectory()) throw this.conflict(`cannot copy to non-directory: ${this.inRoot(destDir)}`);
    if (!existing) {
      await fsp.mkdir(destDir, { mode: 0o700 });
      this.dirMeta.push({ src: srcDir, dest: destDir, st });
    } else if (!isTop) {
      this.dirMeta.push({ src: srcDir, dest: destDir, st });
    }
    const entries = await fsp.readdir(srcDir, { withFileTypes: true });
    entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const e of entries) {
      const rel = relBase ? `${relBase}/${e.name}` : e.name;
      // --exclude patterns match paths relative to the copied source directory (fsutil's
      // srcComponents), not to the context root: `COPY --exclude=*.png dir1 /x` drops dir1/a.png.
      if (isExcluded(this.exclude, rel.slice(topBase.length).replace(/^\//, ''))) continue;
      const src = path.join(srcDir, e.name);
      const dest = path.join(destDir, e.name);
      if (e.isDirectory()) await this.copyDirContents(src, dest, rel, false, group, topBase);
      else await this.schedule(() => this.copyEntry(src, dest, false, group));
    }
  }

  private inRoot(p: string): string {
    return '/' + path.relative(this.destRoot, p);
  }

  private conflict(message: string): StepError {
    return new StepError(message, { hint: 'remove what is in the way first (RUN rm ...), or copy to another path' });
  }

  // A directory on the way to what --parents copies: made like its source when missing
  // (mode, owner, times and xattrs, with --chown/--chmod applied); an existing one is kept.
  async parentDir(src: string, dest: string): Promise<void> {
    const existing = await fsp.lstat(dest).catch(() => null);
    if (existing) {
      if (!existing.isDirectory()) throw this.conflict(`cannot copy to non-directory: ${this.inRoot(dest)}`);
      return;
    }
    await fsp.mkdir(dest, { mode: 0o700 });
    this.dirMeta.push({ src, dest, st: await fsp.stat(src) });
  }

  // A directory made for the copy (not from a source entry) still gets the source's times, last.
  keepTimes(dest: string, st: fs.Stats): void {
    this.dirMeta.push({ src: '', dest, st, timesOnly: true });
  }

  async copyEntry(src: string, dest: string, follow: boolean, group: number): Promise<void> {
    const [st, existing] = await Promise.all([follow ? fsp.stat(src) : fsp.lstat(src), fsp.lstat(dest).catch(() => null)]);
    if (st.isDirectory()) return this.copyDirContents(src, dest, '', false, group);
    if (existing?.isDirectory()) throw this.conflict(`cannot replace to directory ${this.inRoot(dest)} with file`);
    if (existing) await fsp.rm(dest, { force: true });
    const linkKey = `${group}:${st.dev}:${st.ino}`;
    let copied: (() => void) | undefined;
    if (st.nlink > 1) {
      const first = this.links.get(linkKey);
      if (first) {
        // Copies run in parallel: link once the first copy of the inode is complete.
        await fsp.link(await first, dest);
        return;
      }
      this.links.set(linkKey, new Promise<string>((resolve) => (copied = () => resolve(dest))));
    }
    try {
      await this.copyOne(src, dest, st);
    } finally {
      copied?.(); // a failed first copy fails the action; its links then fail too
    }
  }

  private async copyOne(src: string, dest: string, st: fs.Stats): Promise<void> {
    if (st.isSymbolicLink()) {
      await fsp.symlink(await fsp.readlink(src), dest);
    } else if (st.isFile()) {
      await fsp.copyFile(src, dest);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      await makeNode(dest, st);
    } else {
      debug(`copy: skipping socket ${src}`);
      return;
    }
    await this.applyMeta(src, dest, st, false);
  }

  private async applyMeta(src: string, dest: string, st: fs.Stats, isDir: boolean): Promise<void> {
    const uid = this.owner?.uid ?? st.uid;
    const gid = this.owner?.gid ?? st.gid;
    await giveTo(dest, { uid, gid }, st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other');
    // xattrs before the mode (a chown clears file capabilities, and so would a later one); an
    // owner the source kept aside (archive/owner.ts) comes along only when --chown gives none.
    for (const name of copyXattrs(src, dest, this.owner ? OWNER_XATTR : undefined)) debug(`copy: cannot set xattr ${name} on ${dest}`);
    if (!st.isSymbolicLink()) {
      const base = st.mode & 0o7777;
      await fsp.chmod(dest, this.chmod ? this.chmod(base, isDir) : base);
    }
    await fsp.lutimes(dest, st.atime, st.mtime);
  }

  private async schedule(job: () => Promise<void>): Promise<void> {
    const p = job().finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    if (this.inflight.size >= TreeCopier.PARALLEL) await Promise.race(this.inflight);
  }

  async finish(): Promise<void> {
    await Promise.all(this.inflight);
    // Deepest directories first so a parent's mtime is set after its children's changes.
    for (const { src, dest, st, timesOnly } of this.dirMeta.reverse()) {
      if (timesOnly) await fsp.utimes(dest, st.atime, st.mtime);
      else await this.applyMeta(src, dest, st, true);
    }
    this.dirMeta.length = 0;
  }
}

async function makeNode(dest: string, st: fs.Stats): Promise<void> {
  try {
    loadAddon().mknod(dest, st.mode, st.rdev);
  } catch (err) {
    debug(`copy: cannot create special file ${dest}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- mkdir/mkfile/rm/symlink

const ROOT: Owner = { uid: 0, gid: 0 };

// mkdir -p inside the root; directories it creates get `owner` (BuildKit chowns created parents).
async function ensureDir(root: string, hostDir: string, owner: Owner | undefined, epoch?: number, mode = 0o755): Promise<void> {
  const rel = path.relative(root, hostDir);
  if (rel.startsWith('..')) throw new ImgError(`refusing to create ${hostDir}: outside the root ${root}`);
  let cur = root;
  for (const part of rel.split(path.sep).filter(Boolean)) {
    const next = await resolveInRoot(root, path.relative(root, path.join(cur, part)), true);
    const st = await fsp.lstat(next).catch(() => null);
    if (!st) {
      await fsp.mkdir(next, { mode });
      await fsp.chmod(next, mode);
      if (owner) await giveTo(next, owner, 'dir');
      if (epoch !== undefined) await fsp.utimes(next, epoch, epoch);
    } else if (!st.isDirectory()) {
      // fsutil's MkdirAll fails with Go's PathError: `mkdir /etc/passwd: not a directory`.
      throw new ImgError(`mkdir ${'/' + path.relative(root, next)}: not a directory`, {
        hint: 'a file is where the copy needs a directory: remove it first (RUN rm ...), or copy to another path',
      });
    }
    cur = next;
  }
}

async function mkdir(opts: FileOpOptions, p: string, mode: number, parents: boolean, chown?: ChownSpec): Promise<void> {
  const owner = chown ? await opts.resolveOwner(chown) : undefined;
  const host = await resolveInRoot(opts.destRoot, p, true);
  const st = await fsp.lstat(host).catch(() => null);
  if (st?.isDirectory()) return; // WORKDIR on an existing directory changes nothing
  if (!parents && !(await exists(path.dirname(host)))) {
    throw new ImgError(`mkdir ${p}: parent directory does not exist`);
  }
  await ensureDir(opts.destRoot, host, owner, opts.sourceDateEpoch, mode);
}

async function mkfile(opts: FileOpOptions, p: string, mode: number, data: string, chown?: ChownSpec): Promise<void> {
  const owner = chown ? await opts.resolveOwner(chown) : undefined;
  const host = await resolveInRoot(opts.destRoot, p, false);
  await ensureDir(opts.destRoot, path.dirname(host), owner, opts.sourceDateEpoch);
  const existing = await fsp.lstat(host).catch(() => null);
  if (existing) await fsp.rm(host, { recursive: existing.isDirectory(), force: true });
  await fsp.writeFile(host, data, { mode });
  await fsp.chmod(host, mode);
  if (owner) await giveTo(host, owner, 'file');
  if (opts.sourceDateEpoch !== undefined) await fsp.utimes(host, opts.sourceDateEpoch, opts.sourceDateEpoch);
}

async function rm(root: string, p: string, allowNotFound: boolean, allowWildcard: boolean): Promise<void> {
  const parent = await resolveInRoot(root, path.posix.dirname(p), true);
  const base = path.posix.basename(p);
  let targets: string[];
  if (allowWildcard && hasWildcards(base)) {
    const glob = compileGlob(base);
    targets = (await fsp.readdir(parent).catch(() => [] as string[])).filter((n) => glob.matches(n)).map((n) => path.join(parent, n));
  } else {
    targets = [path.join(parent, base)];
  }
  for (const t of targets) {
    const st = await fsp.lstat(t).catch(() => null);
    if (!st) {
      if (allowNotFound) continue;
      throw new ImgError(`rm ${p}: no such file or directory`);
    }
    await fsp.rm(t, { recursive: true, force: true });
  }
}

async function symlink(opts: FileOpOptions, oldpath: string, newpath: string, chown?: ChownSpec): Promise<void> {
  const owner = chown ? await opts.resolveOwner(chown) : undefined;
  const host = await resolveInRoot(opts.destRoot, newpath, false);
  await ensureDir(opts.destRoot, path.dirname(host), owner, opts.sourceDateEpoch);
  await fsp.symlink(oldpath, host);
  if (owner) await giveTo(host, owner, 'other');
}

// ---------------------------------------------------------------- chmod

// `--chmod=0755` or symbolic `u+x,go-w`, `a=rX` (X: execute only for dirs or when any x is set).
export function parseChmod(spec: string): (mode: number, isDir: boolean) => number {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const m = parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',');
  const parsed = clauses.map((clause) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
    if (!m) throw new ImgError(`invalid --chmod value "${spec}"`, { hint: 'use octal (0755) or symbolic (u+x,go-w) modes' });
    return { who: m[1] || 'a', op: m[2], perms: m[3] };
  });
  return (mode: number, isDir: boolean) => {
    let out = mode;
    for (const { who, op, perms } of parsed) {
      let bits = 0;
      const hasX = isDir || (out & 0o111) !== 0;
      const whoMask = (w: string) => (w === 'u' ? 0o4700 : w === 'g' ? 0o2070 : w === 'o' ? 0o1007 : 0o7777);
      let mask = 0;
      for (const w of who === 'a' ? ['u', 'g', 'o'] : who.split('')) mask |= whoMask(w);
      for (const p of perms) {
        if (p === 'r') bits |= 0o444;
        else if (p === 'w') bits |= 0o222;
        else if (p === 'x' || (p === 'X' && hasX)) bits |= 0o111;
        else if (p === 's') bits |= 0o6000;
        else if (p === 't') bits |= 0o1000;
      }
      bits &= mask;
      if (op === '+') out |= bits;
      else if (op === '-') out &= ~bits;
      else out = (out & ~(mask & 0o7777)) | bits;
    }
    return out & 0o7777;
  };
}

// ---------------------------------------------------------------- globbing (util/glob.ts)

// --exclude patterns: relative paths with '**', matching a path or a directory above it.
function compileExclude(pattern: string): Glob {
  const clean = path.posix.normalize(pattern).replace(/^\/+/, '').replace(/^\.\//, '');
  return compileGlob(clean, { doubleStar: true });
}

function isExcluded(patterns: Glob[], rel: string): boolean {
  return patterns.some((g) => g.matchesPathOrParent(rel));
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

// chown p to owner. Ids this user namespace does not map are kept aside (archive/owner.ts),
// so the layer still records them; outside any namespace an ordinary user cannot give files
// away (EPERM): the copy goes on with the user's own.
async function giveTo(p: string, owner: Owner, kind: 'file' | 'dir' | 'other'): Promise<void> {
  if (!idsMapped(owner.uid, owner.gid)) return setOwner(p, owner.uid, owner.gid, kind, true);
  await fsp.lchown(p, owner.uid, owner.gid).catch((err) => {
    if (!isErrno(err, 'EPERM')) throw err;
    debug(`cannot chown ${p} to ${owner.uid}:${owner.gid}: ${(err as Error).message}`);
  });
}
