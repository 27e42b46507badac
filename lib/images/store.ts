// Image index: name → target descriptor, one small JSON file per name under
// <state>/images/. File names are the sha256 of the name (names contain '/',
// ':' and '@' and may exceed a file name's length); the name is inside.
// Every write is temp + fsync + rename, so readers see the old or the new record.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ContentError, isErrno } from '../util/errors';
import { writeFileAtomic } from '../util/fsutil';
import type { Descriptor } from './types';

export interface ImageRecord {
  name: string; // normalized reference, e.g. "docker.io/library/busybox:latest"
  target: Descriptor; // manifest or index
  createdAt: string; // ISO 8601
  updatedAt: string;
}

export class ImageStore {
  readonly dir: string;

  constructor(readonly stateDir: string) {
    this.dir = path.join(stateDir, 'images');
  }

  private fileFor(name: string): string {
    return path.join(this.dir, `${createHash('sha256').update(name).digest('hex')}.json`);
  }

  async get(name: string): Promise<ImageRecord | null> {
    return readRecord(this.fileFor(name));
  }

  async put(name: string, target: Descriptor): Promise<ImageRecord> {
    const now = new Date().toISOString();
    const old = await this.get(name);
    const rec: ImageRecord = {
      name,
      target: cleanDescriptor(target),
      createdAt: old?.createdAt ?? now,
      updatedAt: now,
    };
    await writeFileAtomic(this.fileFor(name), JSON.stringify(rec, null, 2) + '\n', { durable: true, what: `the image record of ${name}` });
    return rec;
  }

  async delete(name: string): Promise<boolean> {
    try {
      await fsp.unlink(this.fileFor(name));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  // Sorted by name, like img ls.
  async list(): Promise<ImageRecord[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const recs = await Promise.all(
      names.filter((n) => /^[a-f0-9]{64}\.json$/.test(n)).map((n) => readRecord(path.join(this.dir, n))),
    );
    return recs.filter((r): r is ImageRecord => r !== null).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

// Only the descriptor fields that identify the target; keeps records small and stable.
function cleanDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations && Object.keys(d.annotations).length) out.annotations = d.annotations;
  if (d.platform) out.platform = d.platform;
  return out;
}

async function readRecord(file: string): Promise<ImageRecord | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const rec = JSON.parse(text) as ImageRecord;
    if (!rec || typeof rec.name !== 'string' || !rec.target?.digest) throw new Error('missing fields');
    return rec;
  } catch (err) {
    throw new ContentError(`image record ${file} is corrupt`, {
      hint: `delete the file and pull or build the image again`,
      cause: err,
    });
  }
}
