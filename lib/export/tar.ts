// Streaming tar writing for the exporters: entries are written one after
// another into a tar-stream pack piped to the destination, so a multi-GB
// layer passes through with bounded memory and respects back-pressure.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';

// Fixed mtime keeps archives of the same content byte-identical.
const MTIME = new Date(0);

export class TarWriter {
  private readonly pack = tarStream.pack();
  private readonly done: Promise<void>;
  private readonly dirs = new Set<string>();
  // Rejects when the destination fails (disk full, closed pipe): pending entries stop waiting.
  private readonly failed: Promise<never>;

  constructor(out: Writable) {
    // `end: true`: the destination is finished when the archive is (a file, a pipe, stdout).
    this.done = pipeline(this.pack, out);
    this.failed = this.done.then(
      () => new Promise<never>(() => {}),
      (err) => Promise.reject(err),
    );
    this.failed.catch(() => undefined); // observed by whoever writes next
  }

  private guard<T>(op: Promise<T>): Promise<T> {
    return Promise.race([op, this.failed]);
  }

  // Ensures parent directory entries exist (some readers want them).
  private async parents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.guard(this.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime: MTIME }));
    }
  }

  private entry(header: Partial<tarStream.Header> & { name: string }, body?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) this.pack.entry(header, body, cb);
      else this.pack.entry(header, cb);
    });
  }

  async addBuffer(name: string, data: Buffer | string, mode = 0o644): Promise<void> {
    await this.parents(name);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    await this.guard(this.entry({ name, type: 'file', mode, mtime: MTIME, size: buf.length }, buf));
  }

  // `size` must be exact: the tar header is written before the data.
  async addStream(name: string, size: number, source: Readable, mode = 0o644): Promise<void> {
    await this.parents(name);
    const sink = this.pack.entry({ name, type: 'file', mode, mtime: MTIME, size });
    try {
      await this.guard(pipeline(source, sink));
    } catch (err) {
      source.destroy();
      throw err;
    }
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    await this.done;
  }

  // Stop early (an error while producing entries): tears the pipeline down.
  abort(err: Error): void {
    this.pack.destroy(err);
    this.done.catch(() => undefined);
  }
}
