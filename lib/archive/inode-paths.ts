// The tar writer's hard-link table: (device, inode) → the first path written for it. A layer
// of files that all have a second link elsewhere (COPY hard-links the context's files) puts
// every file here, so it is kept off the JS heap and small: per device, open addressing over
// typed arrays (an inode number and where its path is: 12 bytes a slot, at most 3/4 full),
// paths as latin1 bytes (they are byte strings) after a 4-byte length in one growing buffer.
export class InodePaths {
  private devices = new Map<number, InodeTable>();
  private names = Buffer.allocUnsafe(64 * 1024);
  private used = 0; // bytes of `names` in use

  get(dev: number, ino: number): string | undefined {
    const at = this.devices.get(dev)?.get(ino);
    if (at === undefined) return undefined;
    const n = this.names.readUInt32LE(at);
    return this.names.toString('latin1', at + 4, at + 4 + n);
  }

  /** Remembers `path` for the inode unless one is remembered already. */
  add(dev: number, ino: number, path: string): void {
    let table = this.devices.get(dev);
    if (!table) this.devices.set(dev, (table = new InodeTable()));
    if (table.get(ino) !== undefined) return;
    const n = Buffer.byteLength(path, 'latin1');
    if (this.used + 4 + n > this.names.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.names.length * 2, this.used + 4 + n));
      this.names.copy(bigger, 0, 0, this.used);
      this.names = bigger;
    }
    this.names.writeUInt32LE(n, this.used);
    this.names.write(path, this.used + 4, 'latin1');
    table.set(ino, this.used);
    this.used += 4 + n;
  }
}

// inode → offset, for one device (linear probing; offsets are stored + 1 so 0 is an empty slot).
class InodeTable {
  private ino = new Float64Array(1024);
  private at = new Uint32Array(1024);
  private count = 0;

  get(ino: number): number | undefined {
    const i = this.slot(ino);
    return this.at[i] === 0 ? undefined : this.at[i] - 1;
  }

  set(ino: number, offset: number): void {
    if ((this.count + 1) * 4 > this.at.length * 3) this.grow();
    const i = this.slot(ino);
    if (this.at[i] === 0) this.count++;
    this.ino[i] = ino;
    this.at[i] = offset + 1;
  }

  private slot(ino: number): number {
    const mask = this.at.length - 1;
    // murmur3's finaliser: inode numbers come in runs and strides; every bit should count
    let h = (ino >>> 0) ^ Math.floor(ino / 4294967296);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    let i = (h ^ (h >>> 16)) & mask;
    while (this.at[i] !== 0 && this.ino[i] !== ino) i = (i + 1) & mask;
    return i;
  }

  private grow(): void {
    const { ino, at } = this;
    this.ino = new Float64Array(at.length * 2);
    this.at = new Uint32Array(at.length * 2);
    for (let j = 0; j < at.length; j++) {
      if (at[j] === 0) continue;
      const i = this.slot(ino[j]);
      this.ino[i] = ino[j];
      this.at[i] = at[j];
    }
  }
}
