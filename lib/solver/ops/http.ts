// The http source op (ADD https://…): downloads the file once, while the key is
// computed, to a temp file under <state>/tmp; run() puts it into a snapshot,
// dated by the response's Last-Modified (else 1970-01-01), as BuildKit does.
// Its cache key is the downloaded content's digest plus the name, mode and date it gets.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import type { HttpSourceVertex } from '../../graph/types';
import { ContentError, ImgError, NotFoundError } from '../../util/errors';
import type { Executor, KeyContext } from '../types';
import type { OpEnv } from './shared';

export function httpOp(env: OpEnv): Executor<HttpSourceVertex> {
  const downloads = new Map<string, Download>(); // vertex id → temp file

  return {
    async contentKey(v, ctx) {
      const got = await download(v, ctx, env.o.stateDir);
      downloads.set(v.id, got);
      return `http:${got.digest}:${v.filename ?? ''}:${v.chmod ?? ''}:${got.modified.getTime()}`;
    },

    async run(v, ctx) {
      const got = downloads.get(v.id);
      if (!got) throw new Error(`http source ${v.url} was not downloaded`);
      const name = v.filename ?? httpFileName(v.url);
      try {
        const snapshot = await env.produce(null, `http ${v.url}`, ctx, async (root) => {
          const dst = path.join(root, name);
          await fsp.copyFile(got.file, dst);
          await fsp.chmod(dst, v.chmod ?? 0o600);
          await fsp.utimes(dst, got.modified, got.modified);
        });
        return { snapshot, layers: [{ snapshot }] };
      } finally {
        await fsp.rm(got.file, { force: true });
        downloads.delete(v.id);
      }
    },
  };
}

// The file name ADD gives a download: the URL path's last component.
export function httpFileName(url: string): string {
  try {
    const u = new URL(url);
    const base = path.posix.basename(u.pathname);
    return base && base !== '/' ? decodeURIComponent(base) : 'index.html';
  } catch {
    return 'download';
  }
}

interface Download {
  file: string;
  digest: string;
  modified: Date; // Last-Modified, else the Unix epoch
}

async function download(v: HttpSourceVertex, ctx: KeyContext, stateDir: string): Promise<Download> {
  const dir = path.join(stateDir, 'tmp');
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, `http-${process.pid}-${randomBytes(6).toString('hex')}`);
  const name = `${v.url}`;
  ctx.progress.status('download', { name: `downloading ${name}` });
  let res: Response;
  try {
    res = await fetch(v.url, { signal: ctx.signal, redirect: 'follow' });
  } catch (err) {
    throw new ImgError(`cannot download ${v.url}: ${(err as Error).message}`, { hint: 'check the URL in ADD and your network', cause: err });
  }
  if (!res.ok || !res.body) {
    const cls = res.status === 404 ? NotFoundError : ImgError;
    throw new cls(`cannot download ${v.url}: HTTP ${res.status}`, { hint: 'check the URL in ADD' });
  }
  const total = Number(res.headers.get('content-length')) || undefined;
  const h = createHash('sha256');
  // --checksum may name sha384 or sha512 (BuildKit checks the download with that algorithm).
  const want = v.checksum ? /^(sha384|sha512):/.exec(v.checksum)?.[1] : undefined;
  const hw = want ? createHash(want) : undefined;
  let n = 0;
  const out = fs.createWriteStream(file, { mode: 0o600 });
  try {
    for await (const chunk of Readable.fromWeb(res.body as ReadableStream<Uint8Array>)) {
      h.update(chunk as Buffer);
      hw?.update(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    await fsp.rm(file, { force: true });
    throw err;
  }
  const digest = `sha256:${h.digest('hex')}`;
  const got = hw ? `${want}:${hw.digest('hex')}` : digest;
  if (v.checksum && v.checksum !== got) {
    await fsp.rm(file, { force: true });
    // BuildKit's words: `digest mismatch <downloaded>: <--checksum>`.
    throw new ContentError(`digest mismatch ${got}: ${v.checksum}`, { hint: `the file at ${v.url} changed upstream, or --checksum is wrong` });
  }
  ctx.progress.status('download', { name: `downloading ${name}`, current: n, total, done: true });
  const lastModified = Date.parse(res.headers.get('last-modified') ?? '');
  return { file, digest, modified: new Date(Number.isNaN(lastModified) ? 0 : lastModified) };
}
