// A counting semaphore whose waiters give up when the build is aborted.
export class Limiter {
  private active = 0;
  private readonly waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  maxActive = 0; // high-water mark, for tests and debug output

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`concurrency limit must be >= 1, got ${limit}`);
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.active < this.limit) {
      this.active++;
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) {
            this.waiters.splice(i, 1);
            reject(signal!.reason);
          }
        };
        // The listener goes away with the wait, so long builds do not pile them up.
        const w = {
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          reject,
        };
        this.waiters.push(w);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    this.maxActive = Math.max(this.maxActive, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.resolve(); // the slot passes straight to the next waiter
      else this.active--;
    };
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
