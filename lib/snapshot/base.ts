// What every backend shares: the on-disk layout, metadata, keys, leases,
// removal, listing, usage. Layout under <state>/snapshots/<backend>/:
//   <id>/meta.json   SnapshotMeta, written atomically (temp + rename)
//   <id>/fs/         the snapshot's own files (overlay: upper dir; native: full tree)
//   <id>/work/       overlay work dir (kept after commit: nothing mounts a committed
//                    snapshot with an upper dir, and removing the volatile mount's
//                    work/work/incompat/volatile/dirty cost each step nine file operations)
//   l/<short>        overlay: short symlink → ../<id>/fs, made when a mount needs
//                    short lowerdir= paths (overlay.ts)
//   mnt/<rand>/      mount points of merged views (a process reuses its own: mountPoint)
//   trash/           directories being deleted (rename first, then rm)
// A committed snapshot made with a key lives in the directory named after the
// key (when the key is a safe file name, e.g. a chainID "sha256:…"), so a
// lookup by key is one stat and two committers of one key race on rename(2).
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContentError, DiskFullError, hostErrorClass, isErrno, LockBusyError, NotFoundError, UsageError } from '../util/errors';
import { debug } from '../util/log';
import { acquireLease, holdsLease, isBusy, leaseAs, leaseFile, releaseAllLeases, releaseLease, unlinkLease, withExclusive } from './lease';
import type { Change, DiskFormat, Mounted, SnapshotBackend, SnapshotInfo, Snapshotter, StoredDir } from './types';
import { diskFullError, diskSpace, writeJsonAtomic } from '../util/fsutil';
import { fsPath as F, toBytes } from '../util/bytenames';
import * as fs from 'node:fs';
import { registerCleanup } from '../host/cleanup';
import { spreadNewDirectories } from '../host/index';
import { umount } from './sys';

export interface SnapshotMeta {
  id: string;
  parent: string | null;
  kind: 'active' | 'committed';
  readonly?: boolean; // a view
  description: string;
  createdAt: string;
  labels?: Record<string, string>;
  short?: string; // overlay: name of l/<short>
  key?: string; // the key it was committed under, when given
  linkedFrom?: string[]; // snapshots whose stored inodes its files are (StoredDir.shares)
}

const RESERVED = new Set(['l', 'mnt', 'trash', 'tmp']);
const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$/;

// BuildKit-style ids: 25 chars of [0-9a-z].
export function randomId(len = 25): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  const bytes = randomBytes(len);
  let s = '';
  for (let i = 0; i < len; i++) s += alphabet[bytes[i] % 36];
  return s;
}

export function idForKey(key: string): string {
  if (SAFE_KEY.test(key) && !RESERVED.has(key)) return key;
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

export { writeJsonAtomic };

// Disk usage of a tree: allocated bytes (st_blocks) and inodes, hard links counted once.
// Names are read as bytes (util/bytenames.ts), so every file is counted whatever its name.
export async function diskUsage(dir: string): Promise<{ size: number; inodes: number }> {
  const seen = new Set<string>(); // dev:ino of multiply-linked files
  let size = 0;
  let inodes = 0;
  const visit = async (p: string): Promise<void> => {
    let st;
    try {
      st = await fsp.lstat(F(p), { bigint: false });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    inodes++;
    size += st.blocks * 512;
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = await fsp.readdir(F(p), { encoding: 'latin1' });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      // Bounded fan-out: siblings concurrently, in chunks.
      for (let i = 0; i < names.length; i += 64) {
        await Promise.all(names.slice(i, i + 64).map((n) => visit(p + '/' + n)));
      }
    }
  };
  await visit(toBytes(dir));
  return { size, inodes };
}

export abstract class BaseSnapshotter implements Snapshotter {
  readonly root: string;
  // Mounts this instance made and has not released, per snapshot id.
  protected readonly mounted = new Map<string, Set<Mounted>>();

  constructor(
    readonly stateDir: string,
    readonly backend: SnapshotBackend,
  ) {
    this.root = path.join(stateDir, 'snapshots', backend);
  }

  abstract readonly diskFormat: DiskFormat;

  // ---- backend hooks ----
  // Fill a new active snapshot's directory (fs/, work/) on top of `parent`.
  protected abstract initActive(dir: string, parent: SnapshotMeta | null, readonly: boolean): Promise<void>;
  protected abstract mountMerged(meta: SnapshotMeta, chain: SnapshotMeta[]): Promise<Mounted>;
  protected abstract changesOf(meta: SnapshotMeta, parent: SnapshotMeta | null): AsyncIterable<Change>;

  // ---- layout ----
  dirOf(id: string): string {
    return path.join(this.root, id);
  }
  fsDir(id: string): string {
    return path.join(this.root, id, 'fs');
  }

  // Once per snapshotter (every prepare asked, two round trips before anything else).
  private layout: Promise<void> | null = null;
  protected ensureLayout(): Promise<void> {
    this.layout ??= (async () => {
      await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
      spreadNewDirectories(this.root); // each snapshot's tree in a block group of its own (host/index.ts says why)
      await Promise.all([...RESERVED].map((d) => fsp.mkdir(path.join(this.root, d), { recursive: true, mode: 0o700 })));
    })().catch((err: unknown) => {
      this.layout = null; // the next call tries again
      throw err;
    });
    return this.layout;
  }

  // Empty mount points this process made and has unmounted: the next mount takes one
  // instead of making a directory (and the unmount keeps it instead of removing it):
  // a new inode is the slowest file operation on a busy ext4, and a COPY step mounts two.
  // The rest are removed at exit or on a signal, through the cleanup registry (img's
  // leftovers pass takes what a killed process left, by age).
  private readonly idleMountPoints: { dir: string; unregister: () => void }[] = [];

  protected async mountPoint(): Promise<string> {
    const reused = this.idleMountPoints.pop();
    if (reused) {
      reused.unregister();
      return reused.dir;
    }
    const dir = path.join(this.root, 'mnt', randomId(10));
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  // A mount at a point from mountPoint(), registered for signal cleanup; its release
  // unmounts and hands the point back (removed when the unmount was not clean).
  protected trackedMount(target: string): Mounted {
    return trackedMount(target, (clean) => (clean ? this.returnMountPoint(target) : fsp.rmdir(target).catch(() => undefined)));
  }

  // An empty mount point back to the idle ones (after an unmount, or a failed mount).
  protected returnMountPoint(target: string): void {
    const unregister = registerCleanup(`idle mount point ${target}`, () => {
      try {
        fs.rmdirSync(target);
      } catch {
        /* gone, or mounted again by a straggler: the leftovers pass takes it */
      }
    });
    this.idleMountPoints.push({ dir: target, unregister });
  }

  async readMeta(id: string): Promise<SnapshotMeta | null> {
    if (!id || id.includes('/') || RESERVED.has(id) || id.startsWith('.')) return null;
    try {
      const meta = JSON.parse(await fsp.readFile(path.join(this.dirOf(id), 'meta.json'), 'utf8')) as SnapshotMeta;
      // A commit that crashed between writing meta and renaming leaves a
      // directory whose meta names another id: not a valid snapshot.
      return meta.id === id ? meta : null;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || err instanceof SyntaxError) return null;
      throw err;
    }
  }

  protected async mustMeta(id: string): Promise<SnapshotMeta> {
    const meta = await this.readMeta(id);
    if (!meta) {
      throw new NotFoundError(`snapshot ${id} does not exist (${this.backend})`, {
        hint: 'it may have been pruned; run the command again to recreate it',
      });
    }
    return meta;
  }

  // A committed snapshot's metadata never changes, and it cannot be removed
  // while it has a child: so the ancestors of a snapshot read from disk are
  // taken from here (trash() forgets an id). The mount of the n-th step of a
  // stage read its n ancestors' meta.json one after another, every step again.
  private readonly committedMetas = new Map<string, SnapshotMeta>();
  // The active snapshots this process made (it leases them, so only it changes them:
  // create, reparent, commit, remove): mount and commit need not read them back.
  private readonly ownActive = new Map<string, SnapshotMeta>();

  // The snapshot (read from disk) and its ancestors, newest first.
  async chain(id: string): Promise<SnapshotMeta[]> {
    const meta = this.ownActive.get(id) ?? (await this.mustMeta(id));
    if (meta.kind === 'committed') this.committedMetas.set(id, meta);
    return this.chainFrom(meta);
  }

  // `meta` and its ancestors, newest first.
  private async chainFrom(first: SnapshotMeta): Promise<SnapshotMeta[]> {
    const out = [first];
    let cur = first.parent;
    while (cur) {
      let meta = this.committedMetas.get(cur);
      if (!meta) {
        meta = await this.mustMeta(cur);
        if (meta.kind === 'committed') this.committedMetas.set(cur, meta);
      }
      out.push(meta);
      cur = meta.parent;
      if (out.length > 10000) throw new ContentError(`snapshot ${first.id}: parent chain loops`, { hint: 'run img prune' });
    }
    return out;
  }

  private async leaseChain(chain: SnapshotMeta[]): Promise<void> {
    for (const m of chain) await acquireLease(this.stateDir, this.backend, m.id);
  }

  // ---- Snapshotter ----
  prepare(parent: string | null, description: string): Promise<string> {
    return this.create(parent, description, false);
  }

  view(parent: string, description: string): Promise<string> {
    return this.create(parent, description, true);
  }

  private async create(parent: string | null, description: string, readonly: boolean): Promise<string> {
    try {
      return await this.createNow(parent, description, readonly);
    } catch (err) {
      throw await this.diskFull(err, `a new snapshot (${description})`);
    }
  }

  // A full disk (ENOSPC, EDQUOT) while making or committing a snapshot's directory,
  // metadata or lease as the user should meet it: the filesystem, the space left, what to do.
  private async diskFull(err: unknown, what: string): Promise<unknown> {
    if (hostErrorClass(err) !== DiskFullError) return err;
    return diskFullError(this.root, what, await diskSpace(this.root), err);
  }

  private async createNow(parent: string | null, description: string, readonly: boolean): Promise<string> {
    await this.ensureLayout();
    let parentMeta: SnapshotMeta | null = null;
    if (parent !== null) {
      // Lease first, then check it still exists: a prune between the two
      // would otherwise pull the parent out from under us. A parent this process
      // leased already cannot have gone (prune removes idle snapshots only), and a
      // committed snapshot's metadata never changes.
      const known = holdsLease(this.stateDir, this.backend, parent) ? this.committedMetas.get(parent) : undefined;
      await acquireLease(this.stateDir, this.backend, parent);
      parentMeta = known ?? (await this.readMeta(parent));
      if (!parentMeta) {
        await releaseLease(this.stateDir, this.backend, parent);
        await this.mustMeta(parent);
      }
      if (parentMeta!.kind !== 'committed') {
        await releaseLease(this.stateDir, this.backend, parent);
        throw new UsageError(`snapshot ${parent} is not committed; cannot use it as a parent`, {
          hint: 'commit the snapshot before preparing on top of it',
        });
      }
      this.committedMetas.set(parent, parentMeta!);
      await this.leaseChain(await this.chainFrom(parentMeta!));
    }
    const id = randomId();
    const dir = this.dirOf(id);
    // The new id's lease and its directory at once: what makes the directory a snapshot
    // prune may take (its meta.json) is written once the lease is held; a directory
    // without one is removed only by the leftovers pass, and only when it is old.
    const [leased, made] = await Promise.allSettled([acquireLease(this.stateDir, this.backend, id), fsp.mkdir(dir, { mode: 0o700 })]);
    if (leased.status === 'rejected' || made.status === 'rejected') {
      if (made.status === 'fulfilled') await this.trash(id).catch(() => undefined);
      if (leased.status === 'fulfilled') await releaseLease(this.stateDir, this.backend, id, true);
      throw leased.status === 'rejected' ? leased.reason : (made as PromiseRejectedResult).reason;
    }
    const meta: SnapshotMeta = {
      id,
      parent,
      kind: 'active',
      ...(readonly ? { readonly: true } : {}),
      description,
      createdAt: new Date().toISOString(),
    };
    try {
      // The metadata is written in place, while the directory is filled: until this
      // returns, nothing names the new id but its leased directory, and a crash leaves
      // a half-made one (no or torn meta.json, or no fs/) that prune takes as a stray.
      await Promise.all([this.initActive(dir, parentMeta, readonly), writeMetaInPlace(dir, meta, 'wx')]);
      this.ownActive.set(id, meta);
    } catch (err) {
      await this.trash(id).catch(() => undefined);
      await releaseLease(this.stateDir, this.backend, id, true);
      throw err;
    }
    debug(`snapshot ${this.backend}: ${readonly ? 'view' : 'prepare'} ${id} on ${parent ?? '(empty)'}: ${description}`);
    return id;
  }

  async mount(id: string): Promise<Mounted> {
    await acquireLease(this.stateDir, this.backend, id);
    let chain: SnapshotMeta[];
    try {
      chain = await this.chain(id);
    } catch (err) {
      await releaseLease(this.stateDir, this.backend, id);
      throw err;
    }
    await this.leaseChain(chain.slice(1));
    const m = await this.mountMerged(chain[0], chain);
    let set = this.mounted.get(id);
    if (!set) this.mounted.set(id, (set = new Set()));
    set.add(m);
    const all = set;
    let released = false;
    return {
      rootfs: m.rootfs,
      release: async () => {
        if (released) return;
        released = true;
        all.delete(m);
        await m.release();
      },
    };
  }

  protected async releaseMounts(id: string): Promise<void> {
    const set = this.mounted.get(id);
    if (!set) return;
    this.mounted.delete(id);
    for (const m of [...set].reverse()) await m.release();
  }

  // Overlay backends only: an active snapshot's own dir holds just its
  // changes, so it can be filled before its parent exists (parallel layer
  // extraction) and given its parent just before commit.
  readonly independentLayers: boolean = false;

  async reparent(id: string, parent: string | null): Promise<void> {
    if (!this.independentLayers) throw new Error(`${this.backend}: snapshots cannot be re-parented`);
    const meta = await this.mustMeta(id);
    if (meta.kind !== 'active') throw new Error(`snapshot ${id} is committed; cannot re-parent it`);
    if (parent) {
      await acquireLease(this.stateDir, this.backend, parent);
      await this.leaseChain(await this.chain(parent));
    }
    await writeJsonAtomic(path.join(this.dirOf(id), 'meta.json'), { ...meta, parent });
    if (this.ownActive.has(id)) this.ownActive.set(id, { ...meta, parent });
    // prepare() gives a new dir its parent's root attributes; a layer that
    // did not set its root ("./") still has mkdir's defaults: do it now.
    if (parent) {
      const [mine, theirs] = await Promise.all([fsp.stat(this.fsDir(id)), fsp.stat(this.fsDir(parent))]);
      if ((mine.mode & 0o7777) === 0o755 && mine.uid === 0 && mine.gid === 0 && (theirs.mode !== mine.mode || theirs.uid !== 0 || theirs.gid !== 0)) {
        await fsp.chmod(this.fsDir(id), theirs.mode & 0o7777);
        await fsp.chown(this.fsDir(id), theirs.uid, theirs.gid);
      }
    }
  }

  async commit(id: string, description: string, key?: string, opts: { linkedFrom?: string[] } = {}): Promise<string> {
    try {
      return await this.commitNow(id, description, key, opts);
    } catch (err) {
      throw await this.diskFull(err, `the snapshot of ${description}`);
    }
  }

  private async commitNow(id: string, description: string, key: string | undefined, opts: { linkedFrom?: string[] }): Promise<string> {
    const meta = this.ownActive.get(id) ?? (await this.mustMeta(id));
    if (meta.kind !== 'active' || meta.readonly) {
      throw new UsageError(`snapshot ${id} is ${meta.kind === 'committed' ? 'already committed' : 'a read-only view'}; cannot commit it`, {
        hint: 'commit an active snapshot made with prepare()',
      });
    }
    // Outstanding mounts would pin the upper dir; commit means "done writing".
    await this.releaseMounts(id);
    const target = key !== undefined ? idForKey(key) : randomId();
    // Another process committed the same key before: take theirs, leased before it is
    // checked (a prune between a check and the lease would remove it under us).
    if (key !== undefined && (await this.getLeased(key, target))) {
      await this.remove(id);
      return target;
    }
    const dir = this.dirOf(id);
    const committed: SnapshotMeta = {
      ...meta,
      id: target,
      kind: 'committed',
      description,
      createdAt: new Date().toISOString(),
      ...(key !== undefined ? { key } : {}),
      ...(this.backend !== 'native' ? { short: randomId(10) } : {}),
      ...(opts.linkedFrom?.length ? { linkedFrom: opts.linkedFrom } : {}),
    };
    // The committed metadata replaces the active one in place: until the rename below
    // the directory still has the active id, and a meta.json naming another id (or a
    // torn one, after a crash) makes it a stray, never a snapshot.
    await Promise.all([leaseAs(this.stateDir, this.backend, id, target), writeMetaInPlace(dir, committed, 'w')]);
    this.ownActive.delete(id);
    try {
      await fsp.rename(dir, this.dirOf(target));
    } catch (err) {
      if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST')) {
        if (await this.readMeta(target)) {
          // Another process committed the same key first: theirs wins.
          await this.trash(id);
          await unlinkLease(this.stateDir, this.backend, id);
          return target;
        }
        // A directory without metadata is what an interrupted removal leaves:
        // clear it away and take its place.
        await this.trash(target);
        await fsp.rename(dir, this.dirOf(target));
      } else throw err;
    }
    await unlinkLease(this.stateDir, this.backend, id);
    debug(`snapshot ${this.backend}: commit ${id} → ${target}: ${description}`);
    return target;
  }

  // The committed snapshot for `key` (or id), leased by this process, or null. Leased
  // first, then read again: a concurrent prune may remove it between a lookup and the
  // lease, and a lease taken on a removed snapshot protects nothing.
  async getLeased(key: string, id?: string): Promise<SnapshotInfo | null> {
    const found = id !== undefined ? await this.readMeta(id) : await this.get(key);
    if (!found || found.kind !== 'committed') return null;
    const had = holdsLease(this.stateDir, this.backend, found.id);
    await acquireLease(this.stateDir, this.backend, found.id);
    if (had) return this.info(found); // leased before: it cannot have gone
    const again = await this.readMeta(found.id);
    if (!again || again.kind !== 'committed') {
      await releaseLease(this.stateDir, this.backend, found.id);
      return null;
    }
    this.committedMetas.set(again.id, again);
    return this.info(again);
  }

  async get(key: string): Promise<SnapshotInfo | null> {
    const meta = (await this.readMeta(idForKey(key))) ?? (await this.readMeta(key));
    return meta ? this.info(meta) : null;
  }

  protected info(meta: SnapshotMeta): SnapshotInfo {
    return {
      id: meta.id,
      parent: meta.parent,
      kind: meta.kind,
      description: meta.description,
      createdAt: meta.createdAt,
      ...(meta.labels ? { labels: meta.labels } : {}),
    };
  }

  // Moves the directory aside (atomic), then deletes it.
  protected async trash(id: string): Promise<void> {
    this.committedMetas.delete(id);
    this.ownActive.delete(id);
    const dir = this.dirOf(id);
    const dest = path.join(this.root, 'trash', `${id}.${randomBytes(4).toString('hex')}`);
    try {
      await fsp.rename(dir, dest);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    await removeTree(dest);
  }

  async remove(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    await this.releaseMounts(id);
    await releaseLease(this.stateDir, this.backend, id, true);
    if (!meta) {
      await this.trash(id); // a half-made directory
      return;
    }
    const kids = (await this.listMeta()).filter((m) => m.parent === id);
    if (kids.length > 0) {
      throw new UsageError(`snapshot ${id} has ${kids.length} child snapshot(s); remove them first`, {
        hint: 'img prune removes unreferenced snapshots in the right order',
      });
    }
    // prune and du probe a snapshot's lock (isBusy, removeIfIdle) for a moment: a busy
    // answer is tried again for a while before it means another process uses it.
    let ok = false;
    for (let tries = 0; tries < 40 && !ok; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 50));
      ok = await withExclusive(this.stateDir, this.backend, id, () => this.removeUnlocked(meta));
      if (!ok && !(await this.readMeta(id))) return; // a prune took it meanwhile
    }
    if (!ok) {
      throw new LockBusyError(leaseFile(this.stateDir, this.backend, id), 'exclusive', {
        message: `snapshot ${id} is in use by another img process`,
        hint: 'wait for it to finish, then retry',
      });
    }
  }

  // Removes a snapshot another process is not using; false when busy. For prune.
  // `known`: the ids the caller listed, with their parents; a snapshot made since (by a
  // process that leased `id` while it made it, and may have ended by now) is looked for
  // under the lock, so a parent never goes before a child it did not know of.
  async removeIfIdle(id: string, known?: ReadonlySet<string>): Promise<boolean> {
    const meta = await this.readMeta(id);
    let hasChild = false;
    const ran = await withExclusive(this.stateDir, this.backend, id, async () => {
      if (meta && known) {
        const fresh = (await this.candidateNames()).filter((n) => !known.has(n));
        const metas = await Promise.all(fresh.map((n) => this.readMeta(n)));
        hasChild = metas.some((m) => m?.parent === id);
        if (hasChild) return;
      }
      if (meta) await this.removeUnlocked(meta);
      else await this.trash(id);
    });
    return ran && !hasChild;
  }

  protected async removeUnlocked(meta: SnapshotMeta): Promise<void> {
    if (meta.short) await fsp.rm(path.join(this.root, 'l', meta.short), { force: true });
    await this.trash(meta.id);
    debug(`snapshot ${this.backend}: removed ${meta.id}`);
  }

  isBusy(id: string): Promise<boolean> {
    return isBusy(this.stateDir, this.backend, id);
  }

  async usage(id: string): Promise<{ size: number; inodes: number }> {
    await this.mustMeta(id);
    return diskUsage(this.fsDir(id));
  }

  async *changes(id: string): AsyncIterable<Change> {
    const meta = await this.mustMeta(id);
    const parent = meta.parent ? await this.mustMeta(meta.parent) : null;
    yield* this.changesOf(meta, parent);
  }

  // The own directories of a snapshot's ancestors, newest first: the lower layers an
  // overlay-format apply into `id` reads (archive/apply.ts `lowers`). With `self`, of
  // `id` and its ancestors (the lowers of a snapshot still to be made on top of `id`).
  async parentDirs(id: string, self = false): Promise<string[]> {
    return (await this.chain(id)).slice(self ? 0 : 1).map((m) => this.fsDir(m.id));
  }

  // Overlay: the chain's own dirs (native overrides: its tree is whole). None for an
  // active snapshot: its files may still change.
  async storeDirs(id: string): Promise<StoredDir[]> {
    const chain = await this.chain(id);
    return chain[0].kind === 'committed' ? chain.map((m) => this.storedDir(m)) : [];
  }

  protected storedDir(m: SnapshotMeta): StoredDir {
    return { id: m.id, dir: this.fsDir(m.id), shares: [m.id, ...(m.linkedFrom ?? [])] };
  }

  async diffRoot(id: string): Promise<Mounted> {
    await this.mustMeta(id);
    return { rootfs: this.fsDir(id), release: async () => {} };
  }

  // Names under the backend root that may be snapshots (not reserved dirs or files).
  private async candidateNames(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.root)).filter((n) => !RESERVED.has(n) && !n.endsWith('.json'));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }

  async listMeta(): Promise<SnapshotMeta[]> {
    const metas = await Promise.all((await this.candidateNames()).map((n) => this.readMeta(n)));
    return metas.filter((m): m is SnapshotMeta => m !== null);
  }

  // Directories that are not valid snapshots (crashed prepare/commit), for prune.
  async strays(): Promise<string[]> {
    const out: string[] = [];
    for (const n of await this.candidateNames()) {
      if (!(await this.readMeta(n))) out.push(n);
    }
    return out;
  }

  async list(): Promise<SnapshotInfo[]> {
    return (await this.listMeta()).map((m) => this.info(m));
  }

  // Drops this process's mounts and leases (end of a command).
  async close(): Promise<void> {
    for (const id of [...this.mounted.keys()]) await this.releaseMounts(id);
    await releaseAllLeases();
  }
}

// rm -rf that also copes with directories without write/search permission
// (overlay's work/work is mode 000): we are root in our namespace, so a
// plain recursive rm works; on EACCES fix modes and retry once.
export async function removeTree(dir: string): Promise<void> {
  try {
    await fsp.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (!isErrno(err, 'EACCES') && !isErrno(err, 'EPERM')) throw err;
    await chmodTree(dir);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function chmodTree(p: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  await fsp.chmod(p, 0o700).catch(() => undefined);
  for (const n of await fsp.readdir(p).catch(() => [] as string[])) await chmodTree(path.join(p, n));
}

// A mount registered for signal cleanup; release unmounts, then hands the mount point to
// `unmounted` (told whether the unmount was clean) or, without it, removes the point.
export function trackedMount(target: string, unmounted?: (clean: boolean) => unknown): Mounted {
  const unregister = registerCleanup(`mount ${target}`, () => {
    try {
      umount(target, true);
      fs.rmdirSync(target);
    } catch {
      /* already gone */
    }
  });
  let released = false;
  return {
    rootfs: target,
    release: async () => {
      if (released) return;
      released = true;
      let clean = true;
      try {
        umount(target, false);
      } catch (err) {
        // Busy (a straggling process): detach it; the kernel finishes when it can.
        clean = false;
        if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOENT')) umount(target, true);
      }
      unregister();
      if (unmounted) await unmounted(clean);
      else await fsp.rmdir(target).catch(() => undefined);
    },
  };
}

// Writes a snapshot's meta.json without a temporary file (a new inode costs more than
// anything else a step does on a busy ext4): 'wx' for a new directory's, 'w' to replace
// the active metadata with the committed one before the directory is renamed. Only a
// directory no reader trusts yet is written so (SnapshotMeta.id must match its name).
function writeMetaInPlace(dir: string, meta: SnapshotMeta, flag: 'w' | 'wx'): Promise<void> {
  return fsp.writeFile(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n', { flag, mode: 0o644 });
}
