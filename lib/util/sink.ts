// A Writable that hands what it is given to an inner stream, waiting on the inner stream's
// 'drain' (so backpressure reaches the writer), and drops the bytes once a failure is kept.
// Its input never errors: the failure is for the subclass's result() to report. The pull's
// layer checks are such sinks beside the ingest (registry/verify.ts LayerVerifier,
// snapshot/unpack.ts ApplyingCheck).
import { Writable } from 'node:stream';

export abstract class ForwardingSink<Inner extends Writable> extends Writable {
  protected failure: Error | null = null;
  private waiting: (() => void) | null = null;

  constructor(protected readonly inner: Inner) {
    // Not destroyed when finished: that would tear down the inner stream still at work.
    super({ highWaterMark: 1 << 20, autoDestroy: false });
  }

  // Keeps the first failure and lets a writer waiting on 'drain' go on (its bytes are dropped).
  protected fail(err: Error): void {
    this.failure ??= err;
    this.release();
  }

  protected release(): void {
    const cb = this.waiting;
    this.waiting = null;
    cb?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure || this.inner.destroyed || this.inner.write(chunk)) return cb();
    this.waiting = cb;
    this.inner.once('drain', () => this.release());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.failure) this.inner.end();
    cb();
  }
}
