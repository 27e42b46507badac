// .dockerignore files (Dockerfile reference, ".dockerignore file"):
// - one pattern per line; a line with '#' in column 1 is a comment; blank lines are skipped;
// - surrounding whitespace is trimmed; patterns are cleaned like Go filepath.Clean,
//   so a leading '/' or './' is dropped ("/foo/../bar" → "bar");
// - Go filepath.Match syntax: '*' (not across '/'), '?', '[a-z]', '[^a-z]', '\' escapes;
//   plus '**' for any number of directories, including none;
// - '!pattern' re-includes; the last pattern that matches a path decides;
// - a pattern that matches a directory also matches everything below it.
// `<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`.

import { DockerfileError } from './errors';
import { Glob, codePoints, goTrimSpace, type GlobToken } from './shell';

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
    const err = patternError(p);
    if (err) {
      throw new DockerfileError(`${err} in pattern ${JSON.stringify(p)}`, {
        file: filename,
        line: i + 1,
        snippet: line,
        hint: 'close "[" classes and escape a trailing "\\"; see Go filepath.Match syntax',
      });
    }
    out.push(invert ? '!' + p : p);
  }
  return out;
}

// Which ignore files apply to a Dockerfile, in precedence order (first found wins).
export function dockerignoreFileFor(dockerfileName: string): string[] {
  return [`${dockerfileName}.dockerignore`, '.dockerignore'];
}

// ---- matching ----

type MatchType = 'exact' | 'prefix' | 'suffix' | 'glob';

interface Compiled {
  exclusion: boolean;
  pattern: string;
  type: MatchType;
  glob?: Glob;
}

// Go filepath.Match's ErrBadPattern cases: a trailing '\', an unterminated or
// empty '[...]', a reversed range, '-' or ']' unescaped where a class needs a character.
export function patternError(p: string): string | undefined {
  const cps = codePoints(p);
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    if (c === 0x5c) {
      if (i + 1 >= cps.length) return 'syntax error';
      i++;
    } else if (c === 0x5b) {
      const cls = readGoClass(cps, i);
      if (!cls) return 'syntax error';
      i = cls.end;
    }
  }
  return undefined;
}

// filepath.Match classes: [ [^] range... ] where a range is c or c-c, and
// '-' and ']' must be escaped to be characters.
function readGoClass(cps: number[], start: number): { token: GlobToken; end: number } | undefined {
  let i = start + 1;
  let neg = false;
  if (cps[i] === 0x5e) {
    neg = true;
    i++;
  }
  const ranges: number[] = [];
  const char = (): number | undefined => {
    const c = cps[i];
    if (c === undefined || c === 0x2d || c === 0x5d) return undefined;
    if (c === 0x5c) {
      if (i + 1 >= cps.length) return undefined;
      i += 2;
      return cps[i - 1];
    }
    i++;
    return c;
  };
  for (;;) {
    if (i >= cps.length) return undefined;
    if (cps[i] === 0x5d && ranges.length > 0) return { token: { k: 'class', neg, ranges }, end: i };
    const lo = char();
    if (lo === undefined) return undefined;
    let hi = lo;
    if (cps[i] === 0x2d) {
      i++;
      const h = char();
      if (h === undefined || h < lo) return undefined;
      hi = h;
    }
    ranges.push(lo, hi);
  }
}

// Pattern → how to test it. Like BuildKit's matcher: literal patterns compare
// strings, "a/**" is a prefix test, "**/a" a suffix test; everything else is a glob
// where * and ? stay within a path element and **/ spans any number of them.
function compile(pattern: string, exclusion: boolean): Compiled {
  const cps = codePoints(pattern);
  const tokens: GlobToken[] = [];
  let type: MatchType = 'exact';
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    if (c === 0x2a /* * */) {
      if (cps[i + 1] === 0x2a) {
        const start = i;
        i++;
        if (cps[i + 1] === 0x2f) i++; // "**/" behaves as "**"
        if (i + 1 >= cps.length) {
          // trailing "**": everything below
          if (type === 'exact') type = 'prefix';
          else type = 'glob';
          tokens.push({ k: 'star', slash: true });
        } else {
          // any number of directories, even none; repeated ones add nothing
          if (tokens.length === 0 || tokens[tokens.length - 1].k !== 'dirs') tokens.push({ k: 'dirs' });
          type = 'glob';
        }
        // a leading "**" is a plain suffix test unless a wildcard follows
        if (start === 0) type = 'suffix';
      } else {
        if (tokens.length === 0 || tokens[tokens.length - 1].k !== 'star') tokens.push({ k: 'star', slash: false });
        type = 'glob';
      }
    } else if (c === 0x3f /* ? */) {
      tokens.push({ k: 'one', slash: false });
      type = 'glob';
    } else if (c === 0x5c /* \ */) {
      // an escaped character matches itself (the literal fast paths would see the '\')
      tokens.push({ k: 'lit', c: cps[++i] });
      type = 'glob';
    } else if (c === 0x5b /* [ */) {
      const cls = readGoClass(cps, i)!; // validated by patternError
      tokens.push(cls.token);
      i = cls.end;
      type = 'glob';
    } else {
      tokens.push({ k: 'lit', c });
    }
  }
  const out: Compiled = { exclusion, pattern, type };
  if (type === 'glob') out.glob = new Glob(tokens);
  return out;
}

function matchOne(p: Compiled, path: string): boolean {
  switch (p.type) {
    case 'exact':
      return path === p.pattern;
    case 'prefix':
      return path.startsWith(p.pattern.slice(0, -2));
    case 'suffix': {
      const suffix = p.pattern.slice(2);
      if (path.endsWith(suffix)) return true;
      return suffix.startsWith('/') && path === suffix.slice(1);
    }
    case 'glob':
      return p.glob!.matches(path);
  }
}

export class PatternMatcher {
  private readonly compiled: Compiled[] = [];
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
      const err = patternError(p);
      if (err) {
        throw new DockerfileError(`${err} in pattern ${JSON.stringify(p)}`, {
          file: '.dockerignore',
          line: 0,
          hint: 'close "[" classes and escape a trailing "\\"; see Go filepath.Match syntax',
        });
      }
      this.compiled.push(compile(p, exclusion));
    }
    this.hasExclusions = this.compiled.some((c) => c.exclusion);
  }

  // Whether `path` (relative to the context, '/'-separated) is excluded: the
  // last pattern matching it or one of its parent directories decides.
  matches(path: string): boolean {
    let file = cleanPath(path);
    while (file.startsWith('/')) file = file.slice(1);
    if (file === '') file = '.';
    // the parent directories, shortest first: "a", "a/b" for "a/b/c"
    let parents: string[] | undefined;
    let matched = false;
    for (const p of this.compiled) {
      // an include can't change an already-matched path, nor an exclusion an unmatched one
      if (p.exclusion !== matched) continue;
      let m = matchOne(p, file);
      if (!m) {
        if (parents === undefined) {
          parents = [];
          for (let i = file.indexOf('/'); i >= 0; i = file.indexOf('/', i + 1)) parents.push(file.slice(0, i));
        }
        for (let i = 0; i < parents.length && !m; i++) m = matchOne(p, parents[i]);
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  // Like `matches` but without looking at parent directories (BuildKit's MatchesExact).
  matchesExact(path: string): boolean {
    let matched = false;
    for (const p of this.compiled) {
      if (p.exclusion !== matched) continue;
      if (matchOne(p, path)) matched = !p.exclusion;
    }
    return matched;
  }

  exclusions(): boolean {
    return this.hasExclusions;
  }

  patterns(): string[] {
    return this.compiled.map((c) => (c.exclusion ? '!' : '') + c.pattern);
  }
}

// One pattern against exactly one path (no parent directories, no '!'), like
// Go's filepath.Match plus '**'. Throws DockerfileError for a malformed pattern.
export function matchPattern(pattern: string, path: string): boolean {
  const p = cleanPath(pattern);
  const err = patternError(p);
  if (err) {
    throw new DockerfileError(`${err} in pattern ${JSON.stringify(p)}`, { file: '.dockerignore', line: 0 });
  }
  return matchOne(compile(p, false), path);
}
