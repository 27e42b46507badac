// Listing images for `img ls` (and other read-only views): records, filters, sizes.
import { ContentStore } from '../content/store';
import { UsageError } from '../util/errors';
import { compileGlob, type Glob } from '../util/glob';
import { formatPlatform } from './platform';
import { familiarName, formatReference, parseReference, repositoryName } from './reference';
import { ImageStore, type ImageRecord } from './store';
import { isIndexMediaType } from './types';
import { imageSize, localManifests } from './walk';

export interface ImageListing extends ImageRecord {
  familiar: string; // "busybox:latest"
  size: number; // bytes of locally present blobs (manifest(s), config(s), layers)
  // An index's platforms stored here ("linux/arm64"), each with its manifest's digest and size.
  platforms?: { platform: string; digest: string; size: number }[];
}

export const FILTER_KEYS = ['name', 'reference'] as const;

// Patterns per key. A pattern is Go's path.Match glob, as docker's reference filter
// (reference.FamiliarMatch): `*` and `?` stop at '/', `[...]` classes (util/glob.ts).
export type Filters = Map<string, Glob[]>;

// `--filter key=value` flags → patterns per key. Same key ORs, different keys AND (docker's rule).
export function parseFilters(args: string[]): Filters {
  const out: Filters = new Map();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      throw new UsageError(`bad format of filter "${arg}" (expected name=value)`, { hint: `e.g. --filter reference='busybox*'` });
    }
    const key = arg.slice(0, eq).trim().toLowerCase();
    const value = arg.slice(eq + 1).replace(/^=/, ''); // accept containerd's key==value too
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`invalid filter "${arg.slice(0, eq)}"`, { hint: `supported filters: ${FILTER_KEYS.join(', ')}` });
    }
    const list = out.get(key) ?? [];
    list.push(compileGlob(value)); // a malformed pattern is a BadPatternError naming it
    out.set(key, list);
  }
  return out;
}

// The strings a pattern may match: full and familiar forms, with and without tag.
function candidates(name: string): string[] {
  try {
    const ref = parseReference(name);
    const bare = { domain: ref.domain, path: ref.path };
    return [formatReference(ref), familiarName(ref), repositoryName(ref), familiarName(bare)];
  } catch {
    return [name];
  }
}

export function matchesFilters(name: string, filters: Filters): boolean {
  const cands = candidates(name);
  for (const patterns of filters.values()) {
    if (!patterns.some((g) => cands.some((c) => g.matches(c)))) return false;
  }
  return true;
}

export async function listImages(stateDir: string, filterArgs: string[] = []): Promise<ImageListing[]> {
  const filters = parseFilters(filterArgs);
  const content = new ContentStore(stateDir);
  const records = (await new ImageStore(stateDir).list()).filter((r) => matchesFilters(r.name, filters));
  return Promise.all(
    records.map(async (r) => {
      let familiar = r.name;
      try {
        familiar = familiarName(parseReference(r.name));
      } catch {
        // a record written under a non-normalized name: show it as is
      }
      const listing: ImageListing = { ...r, familiar, size: await imageSize(content, r.target) };
      if (isIndexMediaType(r.target.mediaType)) {
        const manifests = (await localManifests(content, r.target)).filter((m) => m.platform && m.platform.os !== 'unknown');
        listing.platforms = await Promise.all(
          manifests.map(async (m) => ({ platform: formatPlatform(m.platform!), digest: m.digest, size: await imageSize(content, m) })),
        );
      }
      return listing;
    }),
  );
}
