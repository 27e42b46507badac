// The shape of the native addon (addon/*.cc), as TypeScript sees it.
// This file is the contract between the C++ side and lib/host/index.ts,
// the only module that loads the addon. Every function is syscall-shaped:
// it does one thing, throws an Error with .code = errno name on failure,
// and carries no policy.

export interface HostProbe {
  kernel: string; // uname release
  uid: number;
  gid: number;
  userns: boolean; // an unprivileged clone(CLONE_NEWUSER) succeeded in a test child
  usernsError?: string; // errno name when it did not
  overlayfs: boolean; // "overlay" is in /proc/filesystems
  fuse: boolean; // /dev/fuse opens read-write for this process
}

export interface NativeAddon {
  abiVersion: number;

  // Advisory whole-file lock on an open fd. Blocking waits run off the JS thread.
  flock(fd: number, mode: 'shared' | 'exclusive' | 'unlock', wait: boolean): Promise<boolean>;

  // Copy one regular file's bytes with copy_file_range (FICLONE first where supported).
  // Creates/truncates dst with `mode`. Resolves to the number of bytes copied.
  copyFile(src: string, dst: string, mode: number): Promise<number>;

  // Copy a whole tree on a thread pool, preserving owner, mode, times, xattrs,
  // hard links, symlinks, device nodes, sockets and fifos. dst must not exist
  // (with `into`: must be a directory, which is filled; its own metadata is left alone).
  // `linkFrom`: directories storing the source tree, newest first (a committed snapshot's
  // fs/ dirs, for the same path as src); a regular file found first in one of them with
  // the type, mode, owner, size, mtime and xattrs src shows is hard-linked, not copied
  // (unless `linkable` is false for that directory: then it is copied).
  // `files` counts non-directory entries, `bytes` each regular inode's bytes copied once,
  // `linked` the files linked (absent from addons built before linkFrom).
  // On failure dst is left partly written: the caller removes it.
  copyTree(
    src: string | Buffer,
    dst: string | Buffer,
    opts?: { threads?: number; linkFrom?: (string | Buffer)[]; linkable?: boolean[]; into?: boolean },
  ): Promise<{ files: number; bytes: number; linked?: number }>;
  // True when copyTree takes linkFrom and into (absent from addons built before them).
  copyTreeLinks?: boolean;

  probe(): HostProbe;
  // The d_type readdir reports for dir/name (0 = DT_UNKNOWN, 8 = DT_REG, 4 = DT_DIR), -1 when absent.
  direntType(dir: string, name: string): number;

  // Clone a child into new user + mount namespaces (+ pid when asked). The child
  // blocks until `releaseChild(syncFd)`, so the parent can write its id maps
  // with newuidmap/newgidmap; then it execs argv[0] with argv/env/cwd.
  cloneUserns(opts: { argv: string[]; env: string[]; cwd: string; pidns?: boolean }): { pid: number; syncFd: number };
  releaseChild(syncFd: number, ok: boolean): void;
  // Waits (off the JS thread) for a child; resolves to its exit code, or 128+signal.
  // Only for cloneUserns and spawn children: libuv reaps the ones child_process spawned.
  waitpid(pid: number): Promise<number>;

  // Starts `path` with posix_spawn (no copy of this process's page tables, unlike
  // fork): stdin/stdout/stderr from `fds` (-1: /dev/null), signals at their defaults.
  // Returns the pid; waitpid() reaps it. Absent from addons built before it existed.
  spawn?(path: string, argv: string[], env: string[], fds: [number, number, number]): number;
  // A pipe: [read end, write end], both close-on-exec.
  pipe?(): [number, number];

  // Replaces this process with `path` (stdio kept, signal mask and SIGPIPE reset).
  // Returns only by throwing. Absent from addons built before it existed.
  execve?(path: string, argv: string[], env: string[]): never;

  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount(target: string, flags: number): void;

  // Compression (addon/codec.cc, deflate.cc, zstd.cc): CPU-bound jobs on the addon's codec
  // pool (its own threads, not libuv's), settled on the JS thread. Absent from addon builds
  // older than the codecs; isal/zstd present only when the build found those libraries.
  codecVersions?: { zlib: string; isal?: string; zstd?: string };
  // Threads of the codec pool: sets the count when given; returns it.
  codecThreads?(threads?: number): number;
  // One chunk of a parallel gzip stream as raw deflate: primed with `dict` (the previous
  // chunk's last 32 KiB), ended by a sync flush, or a final block when `last`. Resolves to the
  // compressed bytes (a Buffer of exactly their length) and the chunk's CRC-32.
  deflateChunk?(codec: 'isal' | 'zlib', level: number, input: Buffer, dict: Buffer | null, last: boolean): Promise<[output: Buffer, crc32: number]>;
  crc32Combine?(crcA: number, crcB: number, lengthB: number): number; // CRC-32 of A then B
  // A streaming codec. run() consumes `input` and fills `output`; it resolves once the input
  // is used up (with `end`: and the stream complete) or `output` is full. One run at a time.
  // Corrupt or truncated data rejects with code 'EBADMSG'.
  CodecStream?: new (kind: CodecStreamKind, level?: number, workers?: number) => NativeCodecStream;

  // A layer's bulk work on the codec pool (addon/layerio.cc, lib/host/layerops.ts): records of
  // 8 numbers (HASH, WRITE, FINISH) run in order; resolves to null or [record, errno code,
  // syscall] of the first failure. Absent from addon builds older than it.
  runLayerOps?(ops: Float64Array, bufs: Buffer[], hash: NativeSha256 | null): Promise<[record: number, code: string, syscall: string] | null>;
  Sha256?: new () => NativeSha256;
  // chattr +T: directories made in `dir` are placed as ext4 places top-level ones (spread over
  // the block groups). Throws the errno (ENOTTY or EOPNOTSUPP where the filesystem has no such flag).
  setTopDirFlag?(dir: string | Buffer): void;

  // One directory's entries on a libuv pool thread (addon/statdir.cc): readdir, statx of each
  // (no link followed), a link's target; sorted as JavaScript sorts strings. `side`: a small
  // file read on the same trip (the context checksum's record of that directory). Absent from
  // addons built before it.
  statDir?(dir: string | Buffer, side?: string): Promise<DirListing>;

  // Paths: a string, or a Buffer of the name's raw bytes (names that are not UTF-8).
  mknod(path: string | Buffer, mode: number, dev: number): void; // mode includes S_IF* type bits; dev as st_rdev (makedev())
  lsetxattr(path: string | Buffer, name: string, value: Buffer): void;
  lgetxattr(path: string | Buffer, name: string): Buffer | null; // null when absent
  llistxattr(path: string | Buffer): string[];
  lremovexattr(path: string | Buffer, name: string): void;
}

export interface DirListing {
  names: string[]; // names that are not UTF-8 decoded with U+FFFD (their bytes in `raw`)
  stats: Float64Array; // per name: mode (0: gone since readdir), size, mtime s, mtime ns, inode high and low 32 bits
  targets: Record<number, string>; // symlinks' targets, by index
  raw: Record<number, Buffer>; // the bytes of names that are not UTF-8, by index
  side?: Buffer | null; // the `side` file's bytes, null when it does not exist
}

export type CodecStreamKind = 'gunzip-isal' | 'gunzip-zlib' | 'zstd-compress' | 'zstd-decompress';

// SHA-256 (OpenSSL's through Node's exported symbols, else the addon's own).
export interface NativeSha256 {
  update(data: Buffer): NativeSha256;
  digest(): string; // hex, once
  readonly implementation: 'openssl' | 'portable' | 'done';
}

export interface NativeCodecStream {
  run(input: Buffer, output: Buffer, end: boolean): Promise<[read: number, written: number, done: boolean]>;
  close(): void; // frees the codec's memory (after a run in progress)
}

// mount(2) flags used by the snapshotters.
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
} as const;

export const MNT_DETACH = 0x2;
