// A layer's bulk work off the JS thread (addon/layerio.cc): SHA-256 of its bytes and the
// writes of its regular files. The caller queues operations in order; they run in batches on
// the addon's codec pool, one batch at a time per queue, so they run in the order given while
// the JS thread goes on (parsing the next part of the tar, reading the next chunk). The
// Buffers queued are the caller's and must not change until the queue is done with them
// (stream chunks never do).
//
// Without the addon (or an addon built before it had runLayerOps) the same operations run
// synchronously in Node, in the same order: slower, same result.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { loadAddon, type NativeAddon, type NativeSha256 } from './index';

// Record layout shared with addon/layerio.cc.
const FIELDS = 8;
const OP_HASH = 1;
const OP_WRITE = 2;
const OP_FINISH = 3;
const F_CHOWN = 1;
const F_TRUNCATE = 2;

// Bytes queued beyond which a writer should wait (waitBelow): memory stays bounded.
export const QUEUE_HIGH_WATER = 8 << 20;
// A chunk this small, with nothing queued before it, is hashed on the calling thread.
const HASH_HERE_MAX = 16 * 1024;

/** What a file gets once its data is written (FINISH): owner (when chown), mode, mtime, length. */
export interface FileFinish {
  chown: boolean;
  uid: number;
  gid: number;
  mode: number; // permission bits incl. setuid/setgid/sticky, set after chown
  mtime: number; // seconds
  truncateTo: number | null; // the file's length when it ends in a hole
}

/** A failed operation: the errno error and the label the caller gave it (an entry name). */
export class LayerOpFailure {
  constructor(
    readonly label: string | undefined,
    readonly error: NodeJS.ErrnoException,
  ) {}
}

type Native = Required<Pick<NativeAddon, 'runLayerOps' | 'Sha256'>>;

let native: Native | null | undefined;
function nativeOps(): Native | null {
  if (native !== undefined) return native;
  try {
    const a = loadAddon();
    native = typeof a.runLayerOps === 'function' && typeof a.Sha256 === 'function' ? (a as Native) : null;
  } catch {
    native = null;
  }
  return native;
}

function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${syscall} failed`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  return err;
}

/**
 * One ordered queue. hash()/write()/finish() queue; the queue starts a batch whenever none
 * runs. A failure stops the queue: later operations only close their files, and
 * waitBelow()/flush() reject with the LayerOpFailure (failure() tells it at once).
 */
export class LayerOpQueue {
  private readonly native = nativeOps();
  private readonly nativeHash: NativeSha256 | null;
  private readonly jsHash: Hash | null;
  private ops: number[] = [];
  private bufs: Buffer[] = [];
  private labels: (string | undefined)[] = [];
  private queuedBytes = 0; // bytes of queued and running operations
  private running: Promise<void> | null = null;
  private failed: LayerOpFailure | null = null;
  private openFds = 0; // files handed over and not yet closed
  private waiters: (() => void)[] = [];

  constructor(hash: boolean) {
    this.nativeHash = hash && this.native ? new this.native.Sha256() : null;
    this.jsHash = hash && !this.native ? createHash('sha256') : null;
  }

  /** Whether the operations run off the JS thread. */
  get offThread(): boolean {
    return this.native !== null;
  }

  /** Files handed over by write()/finish() that the queue has not closed yet. */
  get filesOpen(): number {
    return this.openFds;
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  failure(): LayerOpFailure | null {
    return this.failed;
  }

  hash(buf: Buffer): void {
    if (this.jsHash) {
      this.jsHash.update(buf);
      return;
    }
    if (!this.nativeHash) throw new Error('LayerOpQueue: made without a hash');
    if (buf.length === 0) return;
    if (buf.length <= HASH_HERE_MAX && !this.running && this.ops.length === 0) {
      // small and nothing before it: here is quicker than a trip to the pool (a manifest, a
      // config; the pool may be busy compressing)
      this.nativeHash.update(buf);
      return;
    }
    this.push(OP_HASH, undefined, this.buf(buf), 0, 0, 0, 0, 0, 0);
    this.queuedBytes += buf.length;
    this.kick();
  }

  /** pwrite of buf[start, end) at pos into fd; the fd is the queue's until its finish(). */
  write(fd: number, buf: Buffer, start: number, end: number, pos: number, label: string): void {
    if (!this.native) {
      if (!this.failed) this.syncOp(label, () => {
        for (let off = start; off < end; ) off += fs.writeSync(fd, buf, off, end - off, pos + off - start);
      });
      return;
    }
    this.push(OP_WRITE, label, fd, this.buf(buf), start, end, pos, 0, 0);
    this.queuedBytes += end - start;
  }

  /** The file's metadata, then close(fd). */
  finish(fd: number, f: FileFinish, label: string): void {
    if (!this.native) {
      if (!this.failed) this.syncOp(label, () => finishSync(fd, f));
      fs.closeSync(fd);
      return;
    }
    const flags = (f.chown ? F_CHOWN : 0) | (f.truncateTo !== null ? F_TRUNCATE : 0);
    this.push(OP_FINISH, label, fd, flags, f.uid, f.gid, f.mode, f.mtime, f.truncateTo ?? 0);
    this.openFds++;
    this.kick();
  }

  /** Resolves once fewer than `bytes` are queued (at once when so); rejects with a failure. */
  async waitBelow(bytes: number): Promise<void> {
    this.kick();
    while (!this.failed && this.queuedBytes >= bytes && this.running) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failed) throw this.failed;
  }

  /** Everything queued done; rejects with the first failure. */
  async flush(): Promise<void> {
    this.kick();
    while (this.running) await this.running;
    if (this.failed) throw this.failed;
  }

  /** The SHA-256 of what hash() was given, as hex; after flush(). */
  digest(): string {
    if (this.running || this.ops.length) throw new Error('LayerOpQueue.digest() before flush()');
    if (this.nativeHash) return this.nativeHash.digest();
    if (this.jsHash) return this.jsHash.digest('hex');
    throw new Error('LayerOpQueue: made without a hash');
  }

  /** Stops: the running batch finishes; files queued and not run are closed, not written. */
  async abort(): Promise<void> {
    this.failed ??= new LayerOpFailure(undefined, errnoError('ECANCELED', 'abort'));
    this.dropQueued();
    while (this.running) await this.running.catch(() => undefined);
    this.dropQueued();
  }

  private buf(b: Buffer): number {
    // consecutive operations on the same chunk share its slot
    const last = this.bufs.length - 1;
    if (last >= 0 && this.bufs[last] === b) return last;
    this.bufs.push(b);
    return last + 1;
  }

  private push(kind: number, label: string | undefined, a: number, b: number, c: number, d: number, e: number, f: number, g: number): void {
    this.ops.push(kind, a, b, c, d, e, f, g);
    this.labels.push(label);
  }

  private dropQueued(): void {
    for (let i = 0; i < this.ops.length; i += FIELDS) {
      if (this.ops[i] === OP_FINISH) {
        fs.closeSync(this.ops[i + 1]);
        this.openFds--;
      }
    }
    this.ops = [];
    this.bufs = [];
    this.labels = [];
    this.queuedBytes = 0;
  }

  private kick(): void {
    if (this.running || this.ops.length === 0 || !this.native) return;
    if (this.failed) return this.dropQueued();
    const ops = new Float64Array(this.ops);
    const bufs = this.bufs;
    const labels = this.labels;
    let bytes = 0;
    let files = 0;
    for (let i = 0; i < ops.length; i += FIELDS) {
      if (ops[i] === OP_HASH) bytes += bufs[ops[i + 1]].length;
      else if (ops[i] === OP_WRITE) bytes += ops[i + 4] - ops[i + 3];
      else files++;
    }
    this.ops = [];
    this.bufs = [];
    this.labels = [];
    this.running = this.native.runLayerOps(ops, bufs, this.nativeHash).then(
      (res) => {
        if (res) this.failed ??= new LayerOpFailure(labels[res[0]], errnoError(res[1], res[2]));
        this.settled(bytes, files);
      },
      (err: Error) => {
        this.failed ??= new LayerOpFailure(undefined, err as NodeJS.ErrnoException);
        this.settled(bytes, files);
      },
    );
  }

  private settled(bytes: number, files: number): void {
    this.queuedBytes -= bytes;
    this.openFds -= files;
    this.running = null;
    this.kick();
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private syncOp(label: string, op: () => void): void {
    try {
      op();
    } catch (err) {
      this.failed = new LayerOpFailure(label, err as NodeJS.ErrnoException);
    }
  }
}

function finishSync(fd: number, f: FileFinish): void {
  if (f.truncateTo !== null) fs.ftruncateSync(fd, f.truncateTo);
  if (f.chown) fs.fchownSync(fd, f.uid, f.gid);
  fs.fchmodSync(fd, f.mode); // after chown, which clears setuid/setgid
  fs.futimesSync(fd, f.mtime, f.mtime);
}

/**
 * SHA-256 of a stream's chunks off the JS thread (a queue of hash operations): update()
 * as chunks come, `await waitBelow()` to keep memory bounded, `await digest()` at the end.
 */
export class Sha256Stream {
  private readonly q = new LayerOpQueue(true);

  update(buf: Buffer): void {
    this.q.hash(buf);
  }

  get pendingBytes(): number {
    return this.q.pendingBytes;
  }

  waitBelow(bytes = QUEUE_HIGH_WATER): Promise<void> {
    return this.q.waitBelow(bytes);
  }

  async digest(): Promise<string> {
    await this.q.flush();
    return this.q.digest();
  }
}
