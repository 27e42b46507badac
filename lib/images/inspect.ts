// What `img inspect` and `img history` show of a stored image, in docker's shapes.
//
// Which image: a name, an ID (the config digest, as docker's classic store
// calls it, with or without "sha256:", or a unique prefix of at least 4 hex
// characters), or a manifest/index digest. An index is shown as the manifest
// the host would run (its platform's, else the only one stored), as
// `docker image inspect` without --platform does.
//
// Sizes are uncompressed, as docker's are (the unpacked layer), read from the
// compressed blob without inflating it: gzip's trailer (ISIZE, the size modulo
// 4 GiB of a single-member stream, what img, BuildKit and pigz write) or zstd's
// frame header when the encoder wrote the content size; else the blob's size.
import * as fsp from 'node:fs/promises';
import { ContentStore } from '../content/store';
import { NotFoundError } from '../util/errors';
import { goStruct, nilMap, nilSlice } from '../util/template';
import { humanSize, rfc3339, timeAgo } from '../util/units';
import { hostPlatform, selectManifest } from './platform';
import { familiarName, formatReference, parseReference } from './reference';
import { ImageStore, type ImageRecord } from './store';
import type { ContainerConfig, Descriptor, Digest, HistoryEntry, ImageConfig, Manifest } from './types';
import { localManifests, withConfigPlatforms } from './walk';

export interface ResolvedImage {
  target: Descriptor; // what the record names (manifest or index)
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig & { comment?: string; docker_version?: string };
  id: Digest; // the config digest
}

// The manifest of `target` to show: the only one stored, else the host platform's.
export async function resolveImage(store: ContentStore, target: Descriptor): Promise<ResolvedImage> {
  const local = await localManifests(store, target);
  if (!local.length) {
    throw new NotFoundError(`image ${target.digest} has no manifest stored locally`, { hint: 'pull or build it again' });
  }
  let chosen = local[0];
  if (local.length > 1) {
    const withPlatforms = await withConfigPlatforms(store, local);
    try {
      chosen = selectManifest(withPlatforms, hostPlatform());
    } catch {
      chosen = withPlatforms.find((d) => d.platform?.os !== 'unknown') ?? withPlatforms[0];
    }
  }
  const manifest = await store.readJson<Manifest>(chosen.digest);
  const config = await store.readJson<ResolvedImage['config']>(manifest.config.digest);
  return { target, manifestDescriptor: chosen, manifest, config, id: manifest.config.digest };
}

// The record name of an image loaded without a name: its ID ("sha256:<hex>"), which
// would otherwise parse as the repository docker.io/library/sha256.
export function isIdName(name: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(name);
}

export async function imageId(store: ContentStore, target: Descriptor): Promise<Digest> {
  return (await resolveImage(store, target)).id;
}

export interface FoundImage extends ResolvedImage {
  records: ImageRecord[]; // every name pointing at the same target
}

function isIdLike(input: string): boolean {
  return /^(sha256:)?[a-f0-9]{4,64}$/.test(input);
}

// The image `input` names, or a NotFoundError worded as docker's ("No such image: NAME").
export async function findImage(content: ContentStore, images: ImageStore, input: string, all?: ImageRecord[]): Promise<FoundImage> {
  const records = all ?? (await images.list());
  let target: Descriptor | undefined;
  let byName: ImageRecord | null = null;
  let pinned: Digest | undefined;
  // A name first ("beef" may be a repository), unless it says it is a digest.
  if (!input.startsWith('sha256:')) {
    try {
      const ref = parseReference(input);
      byName = await images.get(formatReference(ref));
      pinned = ref.digest;
    } catch {
      // not a reference
    }
  }
  if (byName) target = byName.target;
  // NAME@sha256:… (a RepoDigests entry): the stored image of that repository with that digest.
  else if (pinned) {
    const ref = parseReference(input);
    const sameRepo = (name: string) => {
      try {
        const have = parseReference(name);
        return have.domain === ref.domain && have.path === ref.path;
      } catch {
        return false;
      }
    };
    target = records.find((r) => r.target.digest === pinned && !isIdName(r.name) && sameRepo(r.name))?.target;
  }
  if (!target && records.some((r) => r.name === input)) target = records.find((r) => r.name === input)!.target;
  else if (!target && isIdLike(input)) {
    const hex = input.replace(/^sha256:/, '');
    const hits = new Map<Digest, Descriptor>();
    for (const r of records) {
      if (r.target.digest.slice(7).startsWith(hex)) hits.set(r.target.digest, r.target);
      else {
        const id = await imageId(content, r.target).catch(() => null);
        if (id?.slice(7).startsWith(hex)) hits.set(r.target.digest, r.target);
      }
    }
    if (hits.size === 1) target = [...hits.values()][0];
  }
  if (!target) throw new NotFoundError(`No such image: ${input}`, { hint: 'list local images with `img ls`; pull, build or load it first' });
  const resolved = await resolveImage(content, target);
  return { ...resolved, records: records.filter((r) => r.target.digest === target!.digest) };
}

// Uncompressed size of a layer blob (see the header); the descriptor's size when unknown.
export async function layerSize(store: ContentStore, layer: Descriptor): Promise<number> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(store.blobPath(layer.digest), 'r');
  } catch {
    return layer.size;
  }
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(18);
    const { bytesRead } = await fh.read(head, 0, 18, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b && size >= 18) {
      const tail = Buffer.alloc(4);
      await fh.read(tail, 0, 4, size - 4);
      return tail.readUInt32LE(0);
    }
    if (bytesRead >= 6 && head.readUInt32LE(0) === 0xfd2fb528) return zstdContentSize(head) ?? size;
    return size;
  } finally {
    await fh.close();
  }
}

// The Frame_Content_Size of a zstd frame header (RFC 8878 3.1.1.1), when present.
function zstdContentSize(h: Buffer): number | null {
  const fhd = h[4];
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const didSize = [0, 1, 2, 4][fhd & 3];
  const fcsSize = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag];
  if (!fcsSize) return null;
  const off = 5 + (single ? 0 : 1) + didSize;
  if (off + fcsSize > h.length) return null;
  switch (fcsSize) {
    case 1:
      return h[off];
    case 2:
      return h.readUInt16LE(off) + 256;
    case 4:
      return h.readUInt32LE(off);
    default:
      return Number(h.readBigUInt64LE(off));
  }
}

// Go's time.RFC3339Nano of an ISO timestamp: fraction without trailing zeros.
export function rfc3339Nano(iso: string): string {
  return iso.replace(/\.(\d*?)0+(?=Z|[+-])/, (_m, d: string) => (d ? `.${d}` : ''));
}

const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

function sortedMap<T>(m: Record<string, T> | undefined): Record<string, T> | undefined {
  if (!m) return undefined;
  return Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]]));
}

// `Config` as docker ≥ 28 marshals it (DockerOCIImageConfig): the OCI image
// config's fields, then docker's extensions, each omitted when empty.
function inspectConfig(c: ContainerConfig | undefined): Record<string, unknown> {
  if (!c) return {};
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (v === undefined || v === null || v === '' || v === false) return;
    if (Array.isArray(v) && !v.length) return;
    if (typeof v === 'object' && !Array.isArray(v) && !Object.keys(v as object).length) return;
    out[k] = v;
  };
  put('User', c.User);
  put('ExposedPorts', sortedMap(c.ExposedPorts));
  put('Env', c.Env);
  put('Entrypoint', c.Entrypoint);
  put('Cmd', c.Cmd);
  put('Volumes', sortedMap(c.Volumes));
  put('WorkingDir', c.WorkingDir);
  put('Labels', sortedMap(c.Labels));
  put('StopSignal', c.StopSignal);
  put('ArgsEscaped', c.ArgsEscaped);
  put('Healthcheck', c.Healthcheck);
  put('OnBuild', c.OnBuild);
  put('Shell', c.Shell);
  return out;
}

// docker image inspect's object, fields in docker's order (API 1.48).
export async function inspectImage(content: ContentStore, img: FoundImage): Promise<Record<string, unknown>> {
  const { config, manifest } = img;
  const repoTags: string[] = [];
  const repoDigests: string[] = [];
  let lastTag = '';
  for (const r of img.records) {
    if (isIdName(r.name)) continue; // kept under its ID (an unnamed `img load`)
    let ref;
    try {
      ref = parseReference(r.name);
    } catch {
      continue; // a name written by an older img that no longer parses
    }
    if (r.updatedAt > lastTag) lastTag = r.updatedAt;
    if (ref.tag) repoTags.push(familiarName({ domain: ref.domain, path: ref.path, tag: ref.tag }));
    repoDigests.push(familiarName({ domain: ref.domain, path: ref.path, digest: ref.digest ?? img.target.digest }));
  }
  let size = 0;
  for (const l of manifest.layers) size += await layerSize(content, l);
  const out: Record<string, unknown> = {
    Id: img.id,
    RepoTags: [...new Set(repoTags)].sort(),
    RepoDigests: [...new Set(repoDigests)].sort(),
    Parent: '',
    Comment: config.comment ?? '',
  };
  if (config.created) out.Created = rfc3339Nano(config.created);
  out.DockerVersion = config.docker_version ?? '';
  out.Author = config.author ?? '';
  out.Config = inspectConfig(config.config);
  out.Architecture = config.architecture ?? '';
  if (config.variant) out.Variant = config.variant;
  out.Os = config.os ?? '';
  if (config['os.version']) out.OsVersion = config['os.version'];
  out.Size = size;
  out.RootFS = { Type: config.rootfs?.type ?? 'layers', Layers: config.rootfs?.diff_ids ?? [] };
  out.Metadata = { LastTagTime: lastTag ? rfc3339Nano(lastTag) : GO_ZERO_TIME };
  return out;
}

export interface HistoryRow {
  id: string; // the image ID on the newest row, "<missing>" on the others
  created: number; // Unix seconds (0 when the config has no date)
  createdBy: string;
  size: number;
  comment: string;
}

// The image's history, newest first, as docker's HistoryResponseItem rows:
// each non-empty step carries the uncompressed size of the layer it made.
export async function imageHistory(content: ContentStore, img: ResolvedImage): Promise<HistoryRow[]> {
  const history: HistoryEntry[] = img.config.history ?? [];
  const layers = [...img.manifest.layers];
  const rows: HistoryRow[] = [];
  for (const h of history) {
    const layer = h.empty_layer ? undefined : layers.shift();
    rows.push({
      id: '<missing>',
      created: h.created ? Math.floor(Date.parse(h.created) / 1000) || 0 : 0,
      createdBy: h.created_by ?? '',
      size: layer ? await layerSize(content, layer) : 0,
      comment: h.comment ?? '',
    });
  }
  rows.reverse();
  if (rows.length) rows[0].id = img.id;
  return rows;
}

// The inspect object as Go templates see docker's struct: every field present
// (zero values where the JSON omits one), nil lists and maps printing "[]" and "map[]".
export function templateView(obj: Record<string, unknown>): Record<string, unknown> {
  const c = (obj.Config ?? {}) as Record<string, unknown>;
  const config = goStruct({
    User: c.User ?? '',
    ExposedPorts: c.ExposedPorts ?? nilMap,
    Env: c.Env ?? nilSlice,
    Entrypoint: c.Entrypoint ?? nilSlice,
    Cmd: c.Cmd ?? nilSlice,
    Volumes: c.Volumes ?? nilMap,
    WorkingDir: c.WorkingDir ?? '',
    Labels: c.Labels ?? nilMap,
    StopSignal: c.StopSignal ?? '',
    ArgsEscaped: c.ArgsEscaped ?? false,
    Healthcheck: c.Healthcheck ?? null,
    OnBuild: c.OnBuild ?? nilSlice,
    Shell: c.Shell ?? nilSlice,
  }, c);
  const rootfs = (obj.RootFS ?? {}) as Record<string, unknown>;
  return goStruct({
    Id: obj.Id,
    RepoTags: obj.RepoTags,
    RepoDigests: obj.RepoDigests,
    Parent: obj.Parent,
    Comment: obj.Comment,
    Created: obj.Created ?? '',
    DockerVersion: obj.DockerVersion,
    Author: obj.Author,
    Config: config,
    Architecture: obj.Architecture,
    Variant: obj.Variant ?? '',
    Os: obj.Os,
    OsVersion: obj.OsVersion ?? '',
    Size: obj.Size,
    RootFS: goStruct({ Type: rootfs.Type, Layers: rootfs.Layers ?? nilSlice }, rootfs),
    Metadata: goStruct({ ...(obj.Metadata as object) }, obj.Metadata),
  }, obj);
}

export interface HistoryViewOptions {
  human: boolean; // -H: "2 weeks ago" and "1.23MB", else RFC 3339 and bytes
  trunc: boolean; // IDs cut to 12 characters and CREATED BY to 45 (docker's Ellipsis)
  now?: number;
}

// One row as docker's history formatter offers it to --format: .ID .CreatedSince
// .CreatedAt .CreatedBy .Size .Comment (json prints them with sorted keys, as docker).
export function historyView(r: HistoryRow, opts: HistoryViewOptions): Record<string, string> {
  const createdAt = rfc3339(r.created);
  let createdBy = r.createdBy.replace(/\t/g, ' ');
  if (opts.trunc && [...createdBy].length > 45) createdBy = `${[...createdBy].slice(0, 44).join('')}…`;
  const id = opts.trunc && r.id.startsWith('sha256:') ? r.id.slice(7, 19) : r.id;
  const fields = {
    ID: id,
    CreatedSince: opts.human ? timeAgo(new Date(r.created * 1000), opts.now) : createdAt,
    CreatedAt: createdAt,
    CreatedBy: createdBy,
    Size: opts.human ? humanSize(r.size, 3) : String(r.size),
    Comment: r.comment,
  };
  const sorted = Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k as keyof typeof fields]]));
  return goStruct(fields, sorted);
}
// The table header: each field's column title, as docker's history formatter names them.
historyView.header = goStruct({ ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' });

// `img inspect NAME…`: the inspect objects of the names found, and the names not found
// (docker prints the first and reports the second).
export async function inspectImages(stateDir: string, names: string[]): Promise<{ found: Record<string, unknown>[]; missing: string[] }> {
  const content = new ContentStore(stateDir);
  const images = new ImageStore(stateDir);
  const all = await images.list();
  const found: Record<string, unknown>[] = [];
  const missing: string[] = [];
  for (const name of names) {
    let img: FoundImage;
    try {
      img = await findImage(content, images, name, all);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      missing.push(name);
      continue;
    }
    found.push(await inspectImage(content, img));
  }
  return { found, missing };
}

// `img history NAME`: the rows, newest first.
export async function historyOf(stateDir: string, name: string): Promise<HistoryRow[]> {
  const content = new ContentStore(stateDir);
  return imageHistory(content, await findImage(content, new ImageStore(stateDir), name));
}
