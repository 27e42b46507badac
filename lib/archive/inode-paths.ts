// The tar writer's hard-link table: (device, inode) → the first path written for it. A layer
// of files that all have a second link elsewhere (COPY hard-links the context's files) puts
// every file here, so it is kept off the JS heap: open addressing over typed arrays, paths as
// latin1 bytes (they are byte strings) in one growing buffer. ~40 bytes a file, no objects.
export class InodePaths {
  private ino = new Float64Array(1024);
  private dev = new Float64Array(1024);
  private at = new Uint32Array(1024); // offset of the path in `names`, + 1 (0: empty slot)
  private len = new Uint32Array(1024);
  private names = Buffer.allocUnsafe(64 * 1024);
  private used = 0; // bytes of `names` in use
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(dev: number, ino: number): string | undefined {
    const i = this.slot(dev, ino);
    return this.at[i] === 0 ? undefined : this.names.toString('latin1', this.at[i] - 1, this.at[i] - 1 + this.len[i]);
  }

  /** Remembers `path` for the inode unless one is remembered already. */
  add(dev: number, ino: number, path: string): void {
    if ((this.count + 1) * 2 > this.at.length) this.grow();
    const i = this.slot(dev, ino);
    if (this.at[i] !== 0) return;
    const n = Buffer.byteLength(path, 'latin1');
    if (this.used + n > this.names.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.names.length * 2, this.used + n));
      this.names.copy(bigger, 0, 0, this.used);
      this.names = bigger;
    }
    this.names.write(path, this.used, 'latin1');
    this.ino[i] = ino;
    this.dev[i] = dev;
    this.at[i] = this.used + 1;
    this.len[i] = n;
    this.used += n;
    this.count++;
  }

  // The slot holding (dev, ino), or the empty one where it would go (linear probing).
  private slot(dev: number, ino: number): number {
    const mask = this.at.length - 1;
    let i = (Math.imul((ino >>> 0) ^ Math.floor(ino / 4294967296), 0x9e3779b1) ^ Math.imul(dev >>> 0, 0x85ebca6b)) & mask;
    while (this.at[i] !== 0 && (this.ino[i] !== ino || this.dev[i] !== dev)) i = (i + 1) & mask;
    return i;
  }

  private grow(): void {
    const { ino, dev, at, len } = this;
    const cap = at.length * 2;
    this.ino = new Float64Array(cap);
    this.dev = new Float64Array(cap);
    this.at = new Uint32Array(cap);
    this.len = new Uint32Array(cap);
    for (let j = 0; j < at.length; j++) {
      if (at[j] === 0) continue;
      const i = this.slot(dev[j], ino[j]);
      this.ino[i] = ino[j];
      this.dev[i] = dev[j];
      this.at[i] = at[j];
      this.len[i] = len[j];
    }
  }
}
