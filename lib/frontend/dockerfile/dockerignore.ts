// .dockerignore files (Dockerfile reference, ".dockerignore file"):
// - one pattern per line; a line with '#' in column 1 is a comment; blank lines are skipped;
// - surrounding whitespace is trimmed; patterns are cleaned like Go filepath.Clean,
//   so a leading '/' or './' is dropped ("/foo/../bar" → "bar");
// - Go filepath.Match syntax: '*' (not across '/'), '?', '[a-z]', '[^a-z]', '\' escapes;
//   plus '**' for any number of directories, including none (util/glob.ts, doubleStar);
// - '!pattern' re-includes; the last pattern that matches a path decides;
// - a pattern that matches a directory also matches everything below it.
// `<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`.

import { BadPatternError } from '../../util/errors';
import { compileGlob, type Glob } from '../../util/glob';
import { DockerfileError } from './errors';
import { goTrimSpace } from './shell';

// Go path.Clean on slash-separated paths.
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = out.join('/');
  if (rooted) return '/' + s;
  return s === '' ? '.' : s;
}

// Pattern lines of a .dockerignore file, cleaned, in order ('!' kept as prefix).
export function parseDockerignore(text: string, filename = '.dockerignore'): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (i === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('#')) continue; // comments only in column 1
    let p = goTrimSpace(line);
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = goTrimSpace(p.slice(1));
    if (p === '' && invert) {
      throw new DockerfileError('illegal exclusion pattern: "!"', {
        file: filename,
        line: i + 1,
        snippet: line,
        hint: 'write a pattern after "!" (e.g. !README.md) or remove the line',
      });
    }
    p = cleanPath(p);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    compileIgnorePattern(p, { file: filename, line: i + 1, snippet: line }); // reject a bad pattern here, with its line
    out.push(invert ? '!' + p : p);
  }
  return out;
}

// Which ignore files apply to a Dockerfile, in precedence order (first found wins).
export function dockerignoreFileFor(dockerfileName: string): string[] {
  return [`${dockerfileName}.dockerignore`, '.dockerignore'];
}

// ---- matching ----

// .dockerignore patterns are globs with '**' as moby/patternmatcher reads them.
function compileIgnorePattern(pattern: string, where: { file: string; line: number; snippet?: string }): Glob {
  try {
    return compileGlob(pattern, { doubleStar: true });
  } catch (err) {
    if (err instanceof BadPatternError) throw new DockerfileError(err.message, { ...where, hint: err.hint, cause: err });
    throw err;
  }
}

interface Rule {
  exclusion: boolean;
  glob: Glob;
}

export class PatternMatcher {
  private readonly rules: Rule[] = [];
  private readonly hasExclusions: boolean;

  constructor(patterns: string[]) {
    for (let raw of patterns) {
      raw = goTrimSpace(raw);
      if (raw === '') continue;
      let p = cleanPath(raw);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) {
          throw new DockerfileError('illegal exclusion pattern: "!"', {
            file: '.dockerignore',
            line: 0,
            hint: 'write a pattern after "!" or remove it',
          });
        }
        exclusion = true;
        p = cleanPath(p.slice(1));
      }
      // patterns are relative to the context root (parseDockerignore already did this)
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
      this.rules.push({ exclusion, glob: compileIgnorePattern(p, { file: '.dockerignore', line: 0 }) });
    }
    this.hasExclusions = this.rules.some((r) => r.exclusion);
  }

  // Whether `path` (relative to the context, '/'-separated) is excluded: the
  // last pattern matching it or one of its parent directories decides.
  matches(path: string): boolean {
    let file = cleanPath(path);
    while (file.startsWith('/')) file = file.slice(1);
    if (file === '') file = '.';
    let matched = false;
    for (const r of this.rules) {
      // an include can't change an already-matched path, nor an exclusion an unmatched one
      if (r.exclusion !== matched) continue;
      if (r.glob.matchesPathOrParent(file)) matched = !r.exclusion;
    }
    return matched;
  }

  // Like `matches` but without looking at parent directories (BuildKit's MatchesExact).
  matchesExact(path: string): boolean {
    let matched = false;
    for (const r of this.rules) {
      if (r.exclusion !== matched) continue;
      if (r.glob.matches(path)) matched = !r.exclusion;
    }
    return matched;
  }

  exclusions(): boolean {
    return this.hasExclusions;
  }

  patterns(): string[] {
    return this.rules.map((r) => (r.exclusion ? '!' : '') + r.glob.source);
  }
}

// One pattern against exactly one path (no parent directories, no '!'), like
// Go's filepath.Match plus '**'. Throws DockerfileError for a malformed pattern.
export function matchPattern(pattern: string, path: string): boolean {
  return compileIgnorePattern(cleanPath(pattern), { file: '.dockerignore', line: 0 }).matches(path);
}
