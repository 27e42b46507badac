// Small filesystem helpers for state that other processes read concurrently.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isErrno } from './errors';
import { debug } from './log';

// Write temp + fsync + rename: readers see the old or the new file, never a torn one.
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

// JSON records (snapshot metadata, cache records, image records) written the same way.
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

// fsync a directory so a rename into it survives a crash; some filesystems refuse, which is fine.
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close();
  }
}

// readFile that returns null for a missing file.
export async function readFileIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

// A JSON record written by writeJsonAtomic: null when it is missing or not JSON
// (a record from an older img, a disk that lost data): the caller recomputes it.
export async function readJsonRecord<T>(file: string): Promise<T | null> {
  const data = await readFileIfExists(file);
  if (data === null) return null;
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch {
    debug(`ignoring unreadable ${file}`);
    return null;
  }
}
