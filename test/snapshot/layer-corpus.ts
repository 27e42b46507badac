// The seeded generator of tricky layer stacks for differential.test.ts (its header says
// which rules the stacks exercise). Plain data out: tar-stream writes the tars.
import type { FixtureEntry } from '../fixtures/layers';

// mulberry32: small, seedable, the same sequence on every machine.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LONG = 'long-' + 'n'.repeat(150); // past ustar's 100 bytes: a PAX path record
// Directory names, and the leaf names of files and links: mostly apart, so most stacks
// apply, but meeting often enough that files replace directories and links replace both.
const DIRS = ['a', 'b', 'c', 'tmp', 'é'];
const LEAVES = ['f', 'g', 'fé', LONG, 'f', 'g', 'h', 'f', 'g', 'h', 'a'];
const LINK_NAMES = ['l', 'l', 'l', 'a', 'f'];
const LINK_TARGETS = ['a', 'b', '/a', '/b/c', '../a', '..', '/', '/tmp', 'tmp', 'missing', 'a/b', '../../c', '/é', 'x/../b'];
const FILE_MODES = [0o644, 0o644, 0o600, 0o755, 0o4755, 0o2711, 0o1644, 0o400, 0o000, 0o6777];
const DIR_MODES = [0o755, 0o755, 0o700, 0o1777, 0o2775, 0o555, 0o750];
const OWNERS = [0, 0, 1, 1000, 65534];
const XATTRS: Array<Record<string, string>> = [{}, {}, {}, { 'user.k': 'v1' }, { 'user.k': 'v2', 'user.m': '' }, { 'user.overlay.opaque': 'y' }];

export function generateStack(seed: number): FixtureEntry[][] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  const randomPath = (leaves: readonly string[] = DIRS): string => {
    const depth = r() < 0.4 ? 1 : r() < 0.75 ? 2 : 3;
    return [...Array.from({ length: depth - 1 }, () => pick(DIRS)), pick(leaves)].join('/');
  };
  const files: string[] = []; // literal paths written as files (hard-link targets)
  const dirs: string[] = ['']; // literal directory paths (whiteout and opaque places)
  const pax = (xs: Record<string, string>) => (Object.keys(xs).length ? Object.fromEntries(Object.entries(xs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined);
  const layers: FixtureEntry[][] = [];
  const nLayers = 2 + Math.floor(r() * 3);
  for (let l = 0; l < nLayers; l++) {
    const entries: FixtureEntry[] = [];
    const n = 3 + Math.floor(r() * 9);
    for (let i = 0; i < n; i++) {
      const owner = { uid: pick(OWNERS), gid: pick(OWNERS) };
      const mtime = 1_500_000_000 + Math.floor(r() * 1000) * 3600;
      const roll = r();
      if (roll < 0.25) {
        const p = randomPath(LEAVES);
        entries.push({ name: p, body: `l${l}e${i}:${p}`.repeat(1 + Math.floor(r() * 3)), mode: pick(FILE_MODES), ...owner, mtime, pax: pax(pick(XATTRS)) });
        files.push(p);
      } else if (roll < 0.45) {
        const p = randomPath();
        entries.push({ name: p + '/', type: 'directory', mode: pick(DIR_MODES), ...owner, mtime, pax: pax(pick(XATTRS)) });
        dirs.push(p);
      } else if (roll < 0.6) {
        entries.push({ name: randomPath(LINK_NAMES), type: 'symlink', linkname: pick(LINK_TARGETS), ...owner, mtime });
      } else if (roll < 0.68 && files.length) {
        // mostly to a file this layer wrote (more likely still there), else to any older one
        const mine = entries.filter((e) => (e.type ?? 'file') === 'file' && e.body && !e.name.includes('.wh.')).map((e) => e.name);
        entries.push({ name: randomPath(LEAVES), type: 'link', linkname: mine.length && r() < 0.6 ? pick(mine) : pick(files), mtime });
      } else if (roll < 0.85) {
        // A whiteout of something that may be there, at any depth, as a file or (rarely) another type.
        const victim = r() < 0.7 ? pick([...files, ...dirs.filter(Boolean)].concat(['a', 'b'])) : randomPath(LEAVES);
        const name = (dirOf(victim) ? dirOf(victim) + '/' : '') + '.wh.' + victim.slice(victim.lastIndexOf('/') + 1);
        const type = r() < 0.8 ? undefined : pick(['directory', 'symlink'] as const);
        entries.push(type === 'symlink' ? { name, type, linkname: 'x', mtime } : type ? { name, type, mtime } : { name, body: '', mtime });
      } else {
        const d = pick(dirs);
        const name = (d ? d + '/' : '') + '.wh..wh..opq';
        entries.push(r() < 0.8 ? { name, body: '', mtime } : { name, type: 'directory', mtime });
      }
    }
    layers.push(entries);
  }
  return layers;
}

