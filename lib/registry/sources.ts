// Where blobs are known to exist remotely, so a push can ask the registry to mount a blob
// from a sibling repository (`POST ?mount=&from=`) instead of uploading it again.
// <state>/registry/sources.json: { "sha256:…": ["127.0.0.1:5000/library/busybox", …] }.
// It is only a hint: concurrent writers may lose an entry, which costs an upload, nothing else.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Digest } from '../images/types';
import { debug } from '../util/log';

const MAX_PER_BLOB = 8;
const MAX_BLOBS = 20_000;

type Sources = Record<string, string[]>;

function file(stateDir: string): string {
  return path.join(stateDir, 'registry', 'sources.json');
}

async function load(stateDir: string): Promise<Sources> {
  try {
    const parsed = JSON.parse(await fsp.readFile(file(stateDir), 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Sources) : {};
  } catch {
    return {}; // missing or damaged: start over, it is a cache
  }
}

// Remember that `registry/repository` holds these blobs (most recent first).
export async function recordSources(stateDir: string, registry: string, repository: string, digests: Iterable<Digest>): Promise<void> {
  const where = `${registry}/${repository}`;
  try {
    const sources = await load(stateDir);
    for (const d of digests) {
      const list = (sources[d] ?? []).filter((s) => s !== where);
      sources[d] = [where, ...list].slice(0, MAX_PER_BLOB);
    }
    const keys = Object.keys(sources);
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_BLOBS))) delete sources[k];
    const target = file(stateDir);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(sources));
    await fsp.rename(tmp, target);
  } catch (err) {
    debug(`could not record blob sources: ${(err as Error).message}`);
  }
}

// Lookup of the repositories on `registry` known to hold a blob (file read once).
export async function blobSources(stateDir: string, registry: string): Promise<(digest: Digest) => string[]> {
  const sources = await load(stateDir);
  const prefix = `${registry}/`;
  return (digest) => (sources[digest] ?? []).filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
}
