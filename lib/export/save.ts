// `img save`: resolve names, then stream a docker or OCI archive to a file or stdout.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ContentStore } from '../content/store';
import { formatReference, parseReference } from '../images/reference';
import { ImageStore } from '../images/store';
import { MediaType, isIndexMediaType, isManifestMediaType, type Descriptor, type Digest } from '../images/types';
import { registerCleanup } from '../host/cleanup';
import { DiskFullError, hostErrorClass, ImgError } from '../util/errors';
import { diskSpace } from '../util/fsutil';
import { bytesSize } from '../util/units';
import { writeDockerArchive } from './docker-archive';
import { writeOciArchive, type ExportImage } from './oci-layout';

export interface SaveOptions {
  format?: string; // 'docker' (default) | 'oci'
  output?: string; // file path; stdout when absent or '-'
  stdout?: NodeJS.WriteStream; // for tests
}

export async function resolveImages(stateDir: string, names: string[]): Promise<ExportImage[]> {
  const images = new ImageStore(stateDir);
  const content = new ContentStore(stateDir);
  const out: ExportImage[] = [];
  for (const input of names) {
    const ref = parseReference(input);
    const key = formatReference(ref);
    const rec = await images.get(key);
    if (rec) {
      out.push({ name: key, target: rec.target });
      continue;
    }
    // NAME@sha256:… of a manifest/index stored locally under another name (like docker save).
    const byDigest = ref.digest ? await storedTarget(content, ref.digest) : null;
    if (!byDigest) throw new ImgError(`No such image: ${input}`, { hint: 'list local images with `img ls`; pull or build it first' });
    out.push({ name: formatReference({ domain: ref.domain, path: ref.path, digest: ref.digest }), target: byDigest });
  }
  return out;
}

async function storedTarget(content: ContentStore, digest: Digest): Promise<Descriptor | null> {
  const st = await content.stat(digest);
  if (!st || st.size > 4 << 20) return null;
  const doc = await content.readJson<{ mediaType?: string; manifests?: unknown; config?: unknown }>(digest).catch(() => null);
  if (!doc) return null;
  const mediaType =
    doc.mediaType ?? (Array.isArray(doc.manifests) ? MediaType.OciIndex : doc.config ? MediaType.OciManifest : undefined);
  if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) return null;
  return { mediaType: mediaType!, digest, size: st.size };
}

// A Writable over process.stdout that never ends it (stdout stays usable) and
// surfaces EPIPE as an error instead of a crash.
function stdoutSink(stdout: NodeJS.WriteStream): Writable {
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk, _enc, cb) {
      if (stdout.write(chunk)) cb();
      else stdout.once('drain', () => cb());
    },
  });
  const onError = (err: Error) => sink.destroy(err);
  stdout.on('error', onError);
  sink.on('close', () => stdout.off('error', onError));
  return sink;
}

export async function saveImages(stateDir: string, names: string[], opts: SaveOptions = {}): Promise<void> {
  const format = opts.format ?? 'docker';
  if (format !== 'docker' && format !== 'oci') {
    throw new ImgError(`unknown save format "${format}"`, { hint: 'use --format docker or --format oci' });
  }
  const stdout = opts.stdout ?? process.stdout;
  const toStdout = !opts.output || opts.output === '-';
  if (toStdout && stdout.isTTY) {
    throw new ImgError('refusing to write an image archive to a terminal', {
      hint: 'use -o FILE, or redirect stdout: img save IMAGE > image.tar',
    });
  }
  // A name given twice is saved once (docker save: one index.json entry, one RepoTag).
  const images = (await resolveImages(stateDir, names)).filter((img, i, all) => all.findIndex((o) => o.name === img.name) === i);
  const store = new ContentStore(stateDir);
  const write = (out: Writable) =>
    format === 'oci' ? writeOciArchive(store, images, out) : writeDockerArchive(store, images, out);
  if (toStdout) {
    try {
      await write(stdoutSink(stdout));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
        throw new ImgError('the reader of stdout went away before the archive was complete (EPIPE)', {
          hint: 'the receiving command exited early; check it, or save with -o FILE',
        });
      }
      throw await archiveDiskFull(err, 'written to stdout', '/dev/stdout', 'what was written to stdout is incomplete');
    }
    return;
  }
  // Write next to the destination and rename: a failed save leaves no partial archive.
  const dest = path.resolve(opts.output!);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomBytes(4).toString('hex')}.tmp`);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(tmp, 'wx', 0o644);
  } catch (err) {
    throw new ImgError(`cannot write ${opts.output}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'check that the directory exists and is writable, or choose another -o path',
      cause: err,
    });
  }
  // Ctrl-C mid-save must not leave the temp file behind.
  const unregister = registerCleanup(`partial archive ${tmp}`, () => fs.rmSync(tmp, { force: true }));
  try {
    await write(fs.createWriteStream('', { fd: fh.fd, autoClose: false }));
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, dest);
  } catch (err) {
    await fh.close().catch(() => undefined);
    const named = await archiveDiskFull(err, `for ${opts.output}`, path.dirname(dest), 'the partial archive was removed'); // the space left before the removal
    await fsp.rm(tmp, { force: true });
    throw named;
  } finally {
    unregister();
  }
}

// A full disk under the archive: where, how much is left, what to do (the state dir
// is not the disk that filled, so img prune is no help).
async function archiveDiskFull(err: unknown, where: string, probe: string, state: string): Promise<unknown> {
  if (hostErrorClass(err) !== DiskFullError) return err;
  const space = await diskSpace(probe);
  const left = space ? ` (${bytesSize(space.free)} free of ${bytesSize(space.total)})` : '';
  return new DiskFullError(`no space left for the archive ${where}${left}`, {
    hint: `free space on that disk, or save to another one (-o PATH); ${state}`,
    cause: err,
  });
}
