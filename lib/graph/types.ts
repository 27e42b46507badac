// The build graph: the contract between the Dockerfile frontend (producer)
// and the solver (consumer). Pure data; no `node:` imports.
// A vertex's `id` is the sha256 of its canonical definition (its fields other
// than id/name, with inputs referenced by id), so identical work is shared.

import type { ImageConfig, Platform } from '../images/types';

export type VertexId = string; // "sha256:<hex>"

// An output of a vertex: exec vertices have output 0 = rootfs, 1.. = writable mounts in order.
export interface Ref {
  vertex: VertexId;
  output: number;
}

// Lines of the Dockerfile, 1-based and inclusive.
export interface LineRange {
  start: number;
  end: number;
}

interface VertexBase {
  id: VertexId;
  name: string; // progress name, BuildKit style: "[build 2/5] RUN make"
  // The instruction it comes from, for a failure's "Dockerfile:N" context;
  // not part of the id (a blank line added above must not change cache keys).
  location?: LineRange[];
  inputs: Ref[]; // everything this vertex reads; indices referenced below
  platform?: Platform;
  ignoreCache?: boolean; // --no-cache for this vertex
  // A step of a stage --no-cache-filter names: it runs although cached. Not part of
  // the id (as BuildKit's IgnoreCache is op metadata): its fresh result replaces the
  // cached one under the same key, which the next build then finds.
  noCacheStage?: boolean;
}

export interface ImageSourceVertex extends VertexBase {
  kind: 'image';
  ref: string; // normalized reference, e.g. docker.io/library/busybox:latest[@sha256:..]
  resolvedDigest?: string; // when the frontend resolved it (config lookup)
  resolveMode?: 'default' | 'pull' | 'local';
}

export interface LocalSourceVertex extends VertexBase {
  kind: 'local';
  source: string; // "context", "dockerfile", or a --build-context name
  includePatterns?: string[]; // only these (from COPY sources); undefined = all
  excludePatterns?: string[]; // .dockerignore
  followPaths?: string[];
}

export interface HttpSourceVertex extends VertexBase {
  kind: 'http';
  url: string;
  checksum?: string; // ADD --checksum
  filename?: string;
  chmod?: number;
}

export interface GitSourceVertex extends VertexBase {
  kind: 'git';
  remote: string;
  ref?: string;
  subdir?: string;
  keepGitDir?: boolean;
  checksum?: string; // ADD --checksum=<commit>: the ref must resolve to this commit
}

export interface ExecMount {
  target: string;
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  input?: number; // index into inputs (bind source, cache base); undefined = scratch
  source?: string; // path inside the input (bind), default "/"
  readonly?: boolean;
  output?: number; // writable mounts that produce an output ref
  cacheId?: string;
  sharing?: 'shared' | 'private' | 'locked';
  secretId?: string;
  sshId?: string;
  env?: string; // secret exposed as env var
  required?: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number; // tmpfs bytes
}

export interface ExecVertex extends VertexBase {
  kind: 'exec';
  rootfs: number; // index into inputs, or -1 for scratch
  args: string[];
  env: string[];
  cwd: string;
  user: string; // "name", "uid", "name:group", resolved at run time against /etc/passwd
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  mounts: ExecMount[];
  hostname?: string;
  extraHosts?: { host: string; ip: string }[];
  validExitCodes?: number[];
  // Proxy variables from --build-arg (HTTP_PROXY, ...): set for the process but,
  // as in BuildKit, kept out of the vertex id and the image history.
  proxyEnv?: string[];
}

export interface ChownSpec {
  user?: string; // name or number, resolved at run time against the destination image
  group?: string;
}

export type FileAction =
  | {
      op: 'copy';
      src: number; // index into inputs
      srcPaths: string[]; // paths/patterns within the source
      dest: string; // absolute path in the destination
      chown?: ChownSpec;
      chmod?: string; // octal ("0755") or symbolic ("u+x")
      followSymlinks: boolean;
      dirCopyContents: boolean;
      createDestPath: boolean;
      allowWildcard: boolean;
      allowEmptyWildcard: boolean;
      attemptUnpack: boolean; // ADD of a local archive
      parents?: boolean; // COPY --parents
      excludePatterns?: string[]; // COPY --exclude
      includePatterns?: string[];
      alwaysReplaceExistingDestPaths?: boolean;
    }
  | { op: 'mkdir'; path: string; mode: number; makeParents: boolean; chown?: ChownSpec }
  | { op: 'mkfile'; path: string; mode: number; data: string; chown?: ChownSpec }
  | { op: 'rm'; path: string; allowNotFound: boolean; allowWildcard: boolean }
  | { op: 'symlink'; oldpath: string; newpath: string; chown?: ChownSpec };

export interface FileVertex extends VertexBase {
  kind: 'file';
  base: number; // index into inputs, -1 = scratch
  actions: FileAction[];
  link?: boolean; // COPY --link: independent layer, rebase-able
}

export type Vertex = ImageSourceVertex | LocalSourceVertex | HttpSourceVertex | GitSourceVertex | ExecVertex | FileVertex;

export interface BuildGraph {
  vertices: Record<VertexId, Vertex>;
  root: Ref | null; // null: FROM scratch with nothing added
  config: ImageConfig; // final image config, history included
  platform: Platform;
  warnings: { message: string; line?: number; endLine?: number; rule?: string }[]; // rule: BuildKit build-check name, when one
  // Secrets/ssh ids referenced (so the CLI can complain early about missing --secret).
  secrets: string[];
  ssh: string[];
}
