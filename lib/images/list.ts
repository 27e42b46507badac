// Listing images for `img ls` (and other read-only views): records, filters, sizes.
import { ContentStore } from '../content/store';
import { ImgError } from '../util/errors';
import { familiarName, formatReference, parseReference, repositoryName } from './reference';
import { ImageStore, type ImageRecord } from './store';
import { imageSize } from './walk';

export interface ImageListing extends ImageRecord {
  familiar: string; // "busybox:latest"
  size: number; // bytes of locally present blobs (manifest(s), config(s), layers)
}

export const FILTER_KEYS = ['name', 'reference'] as const;

// Glob with path.Match semantics: `*` and `?` do not cross '/', `[...]` classes.
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close < 0) throw new ImgError(`invalid filter pattern "${pattern}": unterminated [`, { hint: 'close the character class with ]' });
      let cls = pattern.slice(i + 1, close);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export type Filters = Map<string, RegExp[]>;

// `--filter key=value` flags → patterns per key. Same key ORs, different keys AND (docker's rule).
export function parseFilters(args: string[]): Filters {
  const out: Filters = new Map();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      throw new ImgError(`bad format of filter "${arg}" (expected name=value)`, { hint: `e.g. --filter reference='busybox*'` });
    }
    const key = arg.slice(0, eq).trim().toLowerCase();
    const value = arg.slice(eq + 1).replace(/^=/, ''); // accept containerd's key==value too
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      throw new ImgError(`invalid filter "${arg.slice(0, eq)}"`, { hint: `supported filters: ${FILTER_KEYS.join(', ')}` });
    }
    const list = out.get(key) ?? [];
    list.push(globToRegExp(value));
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
    if (!patterns.some((re) => cands.some((c) => re.test(c)))) return false;
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
      return { ...r, familiar, size: await imageSize(content, r.target) };
    }),
  );
}
