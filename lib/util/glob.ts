// The one glob matcher for every pattern a user gives img: .dockerignore, COPY/ADD
// sources and --exclude, the COPY cache key's include set, `img ls --filter`,
// `img du --filter` and the patterns of ${VAR#p} ${VAR%p} ${VAR/p/r}. One syntax,
// so the places cannot disagree; the differences between them are options.
//
// Syntax: Go's path/filepath.Match.
//   *              any run of characters but the separator
//   ?              any one character but the separator
//   [abc] [a-z]    a class; [^a-z] negates it. '!' is an ordinary member, as in Go and
//                  BuildKit (shells read [!a] as a negation; Dockerfiles never did).
//                  '-' and ']' are members only escaped; a class may match the separator.
//   \c             the character c
// Options:
//   separator      what * and ? never match: '/' for paths (the default), '\n' for shell
//                  patterns (BuildKit runs them as Go regexps, whose '.' stops at a
//                  newline), '' for nothing (whole strings such as du descriptions).
//   doubleStar     '**' as moby/patternmatcher reads .dockerignore: "**/" is any number
//                  of directories (none too), a trailing "**" anything. Its shortcuts are
//                  kept with their quirks: literal text after a leading "**" is a suffix
//                  test ("**.log" matches "a.log" and "xa.log"), literal text before a
//                  trailing "**" a prefix test.
//   classes        false: '[' and ']' are ordinary characters (shell patterns have none).
// A malformed pattern (Go's ErrBadPattern: a class left open or empty, an unescaped
// '-' or ']' where a class needs a character, a trailing '\'; also a reversed range,
// which Go would silently never match) is a BadPatternError when compiled.
//
// Matching runs a small NFA over code points, never a backtracking RegExp: time is
// linear in the input for a given pattern, so `*a*a*a*a*b` cannot stall a build.
//
// Pure TypeScript (no node: imports): the frontend bundles for a neutral platform.

import { BadPatternError } from './errors';

export interface GlobOptions {
  separator?: '/' | '\n' | '';
  doubleStar?: boolean;
  classes?: boolean;
}

const SLASH = 0x2f;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const STAR = 0x2a;
const QUESTION = 0x3f;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;

// One NFA state each; 'dirs' takes two (entering, and inside a directory run).
type Token =
  | { k: 'lit'; c: number }
  | { k: 'one' } // ?: one character but the separator
  | { k: 'class'; neg: boolean; ranges: number[] } // pairs lo, hi
  | { k: 'star' } // *: a run without the separator
  | { k: 'rest' } // trailing ** (doubleStar): a run without a newline, like Go's '.*'
  | { k: 'dirs' }; // **/ (doubleStar): "" or a run without a newline that ends in '/'

type State = Token | { k: 'inside' };

// How `matches` tests a pattern; the automaton serves every kind but `matches`
// takes patternmatcher's string shortcuts where it does.
type Kind = 'exact' | 'prefix' | 'suffix' | 'nfa';

export class Glob {
  readonly source: string;
  private readonly kind: Kind;
  private readonly literal: string; // exact: the text; prefix/suffix: the part to compare
  private readonly sep: number; // -1: none
  private readonly states: State[] = [];
  private readonly final: number;
  // Reused between runs: the current and next state lists, the start position of
  // the attempt each thread belongs to (for `find`), and a generation-stamped
  // "already in the next list" mark.
  private cur: Int32Array;
  private nxt: Int32Array;
  private curFrom: Int32Array;
  private nxtFrom: Int32Array;
  private curLen = 0;
  private nxtLen = 0;
  private readonly mark: Uint32Array;
  private gen = 0;

  constructor(source: string, tokens: readonly Token[], sep: number, kind: Kind, literal: string) {
    this.source = source;
    this.kind = kind;
    this.literal = literal;
    this.sep = sep;
    for (const t of tokens) {
      this.states.push(t);
      if (t.k === 'dirs') this.states.push({ k: 'inside' });
    }
    this.final = this.states.length;
    const n = this.final + 1;
    this.cur = new Int32Array(n);
    this.nxt = new Int32Array(n);
    this.curFrom = new Int32Array(n);
    this.nxtFrom = new Int32Array(n);
    this.mark = new Uint32Array(n);
  }

  // Whether the whole of `s` matches.
  matches(s: string): boolean {
    switch (this.kind) {
      case 'exact':
        return s === this.literal;
      case 'prefix':
        return s.startsWith(this.literal);
      case 'suffix':
        // "**/name" also matches "name" itself
        return s.endsWith(this.literal) || (this.literal.charCodeAt(0) === SLASH && s === this.literal.slice(1));
      case 'nfa':
        break;
    }
    this.begin(0);
    for (let i = 0; i < s.length; i++) {
      if (this.curLen === 0) return false;
      const c = s.codePointAt(i)!;
      if (c > 0xffff) i++;
      this.step(c, -1);
    }
    return this.accepting() >= 0;
  }

  // Whether `path` ('/'-separated) or one of its parent directories matches, as a
  // .dockerignore or --exclude pattern excludes everything below a matched directory.
  matchesPathOrParent(path: string): boolean {
    if (this.matches(path)) return true;
    for (let i = path.indexOf('/'); i > 0; i = path.indexOf('/', i + 1)) {
      if (this.matches(path.slice(0, i))) return true;
    }
    return false;
  }

  // The length of the shortest (or longest) prefix of `cps` the automaton
  // matches, -1 when none does. One pass over the input.
  matchPrefix(cps: readonly number[], longest: boolean): number {
    this.begin(0);
    let found = this.accepting() >= 0 ? 0 : -1;
    if (found === 0 && !longest) return 0;
    for (let i = 0; i < cps.length && this.curLen > 0; i++) {
      this.step(cps[i], -1);
      if (this.accepting() >= 0) {
        found = i + 1;
        if (!longest) return found;
      }
    }
    return found;
  }

  // The leftmost-longest match in cps[from..] as [start, end), or undefined. All
  // attempts run side by side (a thread remembers where its attempt started; two
  // threads in one state keep the earlier start), so a search reads each input
  // position once, plus what it reads past its match to be sure none is longer.
  find(cps: readonly number[], from = 0): [number, number] | undefined {
    let start = -1;
    let end = -1;
    this.begin(from);
    for (let i = from; ; i++) {
      const s = this.accepting();
      if (s >= 0 && (start < 0 || s < start || (s === start && i > end))) {
        start = s;
        end = i;
      }
      if (i >= cps.length) break;
      // Attempts starting after a found match cannot win; once one is found, no new
      // ones start. A new attempt goes last: the lists stay ordered by start.
      this.stepInto(cps[i], start);
      if (start < 0) this.add(0, i + 1);
      this.swap();
      if (this.curLen === 0) break;
    }
    return start < 0 ? undefined : [start, end];
  }

  // ---- the automaton ----

  // Adds state s (and what it reaches without reading input) to the next list.
  private add(s: number, from: number): void {
    if (this.mark[s] === this.gen) return;
    this.mark[s] = this.gen;
    this.nxt[this.nxtLen] = s;
    this.nxtFrom[this.nxtLen++] = from;
    const st = this.states[s];
    if (st === undefined) return; // the accepting state
    if (st.k === 'star' || st.k === 'rest') this.add(s + 1, from);
    else if (st.k === 'dirs') {
      this.add(s + 1, from); // inside a run of directories
      this.add(s + 2, from); // or none at all
    }
  }

  private swap(): void {
    let t = this.cur;
    this.cur = this.nxt;
    this.nxt = t;
    t = this.curFrom;
    this.curFrom = this.nxtFrom;
    this.nxtFrom = t;
    this.curLen = this.nxtLen;
    this.nxtLen = 0;
    this.gen = (this.gen + 1) >>> 0;
    if (this.gen === 0) {
      this.mark.fill(0xffffffff);
      this.gen = 1;
    }
  }

  private begin(from: number): void {
    this.gen = (this.gen + 1) >>> 0 || 1;
    this.nxtLen = 0;
    this.add(0, from);
    this.swap();
  }

  // The start of the attempt that reached the accepting state, or -1.
  private accepting(): number {
    for (let i = 0; i < this.curLen; i++) if (this.cur[i] === this.final) return this.curFrom[i];
    return -1;
  }

  // Reads one character into the next list (threads of attempts starting after
  // `limit` are dropped when limit >= 0). The caller swaps.
  private stepInto(c: number, limit: number): void {
    for (let i = 0; i < this.curLen; i++) {
      const from = this.curFrom[i];
      if (limit >= 0 && from > limit) continue;
      const s = this.cur[i];
      const st = this.states[s];
      if (st === undefined) continue;
      switch (st.k) {
        case 'lit':
          if (c === st.c) this.add(s + 1, from);
          break;
        case 'one':
          if (c !== this.sep) this.add(s + 1, from);
          break;
        case 'class':
          if (inClass(st, c)) this.add(s + 1, from);
          break;
        case 'star':
          if (c !== this.sep) this.add(s, from);
          break;
        case 'rest':
          if (c !== NEWLINE) this.add(s, from);
          break;
        case 'inside':
          if (c !== NEWLINE) this.add(s, from);
          if (c === SLASH) this.add(s + 1, from);
          break;
        case 'dirs':
          break; // never current: `add` passes straight through it
      }
    }
  }

  private step(c: number, limit: number): void {
    this.stepInto(c, limit);
    this.swap();
  }
}

function inClass(t: { neg: boolean; ranges: number[] }, c: number): boolean {
  let hit = false;
  for (let i = 0; i < t.ranges.length && !hit; i += 2) hit = c >= t.ranges[i] && c <= t.ranges[i + 1];
  return hit !== t.neg;
}

// Compiles `pattern`; throws BadPatternError when it is malformed.
export function compileGlob(pattern: string, opts: GlobOptions = {}): Glob {
  const sepText = opts.separator ?? '/';
  const sep = sepText === '' ? -1 : sepText.charCodeAt(0);
  const classes = opts.classes ?? true;
  const cps = toCodePoints(pattern);
  const tokens: Token[] = [];
  // patternmatcher's kinds: literal text is 'exact', "text**" 'prefix', "**text" 'suffix'.
  let kind: Kind = 'exact';
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    if (c === STAR) {
      if (opts.doubleStar && cps[i + 1] === STAR) {
        const first = i === 0;
        i++;
        if (cps[i + 1] === SLASH) i++; // "**/" reads as "**"
        if (i + 1 >= cps.length) {
          kind = kind === 'exact' ? 'prefix' : 'nfa';
          tokens.push({ k: 'rest' });
        } else {
          // repeated "**/" add nothing
          if (tokens.at(-1)?.k !== 'dirs') tokens.push({ k: 'dirs' });
          kind = 'nfa';
        }
        if (first) kind = 'suffix'; // until a wildcard follows
      } else {
        if (tokens.at(-1)?.k !== 'star') tokens.push({ k: 'star' });
        kind = 'nfa';
      }
    } else if (c === QUESTION) {
      tokens.push({ k: 'one' });
      kind = 'nfa';
    } else if (c === BACKSLASH) {
      if (i + 1 >= cps.length) throw bad(pattern, 'a trailing "\\" escapes nothing', 'write "\\\\" for a literal "\\"');
      tokens.push({ k: 'lit', c: cps[++i] });
      kind = 'nfa'; // the string shortcuts would see the backslash
    } else if (c === LBRACKET && classes) {
      const cls = readClass(pattern, cps, i);
      tokens.push(cls.token);
      i = cls.end;
      kind = 'nfa';
    } else {
      tokens.push({ k: 'lit', c });
    }
  }
  let literal = '';
  if (kind === 'exact') literal = pattern;
  else if (kind === 'prefix' && pattern.endsWith('**')) literal = pattern.slice(0, -2);
  else if (kind === 'suffix') literal = pattern.slice(2);
  else kind = 'nfa'; // "a/**/" (patternmatcher only sees cleaned patterns, without the '/')
  return new Glob(pattern, tokens, sep, kind, literal);
}

// One-off match (compiles each time: callers matching often keep the Glob).
export function matchGlob(pattern: string, s: string, opts?: GlobOptions): boolean {
  return compileGlob(pattern, opts).matches(s);
}

// Whether `s` holds an unescaped * ? or [ (Go's rule in BuildKit's COPY: a
// source without one is a plain path, found as written).
export function hasWildcards(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === STAR || c === QUESTION || c === LBRACKET) return true;
  }
  return false;
}

// [ [^] range... ] where a range is c or c-c; '-' and ']' must be escaped to be a c.
function readClass(pattern: string, cps: readonly number[], start: number): { token: Token; end: number } {
  let i = start + 1;
  let neg = false;
  if (cps[i] === CARET) {
    neg = true;
    i++;
  }
  const ranges: number[] = [];
  const unclosed = (): BadPatternError => bad(pattern, '"[" without a closing "]"', 'close the class with "]", or write "\\[" for a literal "["');
  // One member character; `lo` is set when it is the upper end of a range.
  const member = (lo?: number): number => {
    const c = cps[i];
    if (c === undefined) throw unclosed();
    if (lo !== undefined && (c === RBRACKET || c === DASH)) {
      throw bad(pattern, `range "${String.fromCodePoint(lo)}-" has no upper end`, 'write "\\-" for a literal "-"');
    }
    if (c === DASH) throw bad(pattern, 'unescaped "-" in a character class', 'write "\\-" for a literal "-"');
    if (c === RBRACKET) throw bad(pattern, 'empty character class', 'put a character in it, or write "\\]" for a literal "]"');
    if (c === BACKSLASH) {
      if (i + 1 >= cps.length) throw unclosed();
      i += 2;
      return cps[i - 1];
    }
    i++;
    return c;
  };
  for (;;) {
    if (cps[i] === RBRACKET && ranges.length > 0) return { token: { k: 'class', neg, ranges }, end: i };
    const lo = member();
    let hi = lo;
    if (cps[i] === DASH) {
      i++;
      hi = member(lo);
      if (hi < lo) {
        const [a, b] = [String.fromCodePoint(lo), String.fromCodePoint(hi)];
        throw bad(pattern, `reversed range "${a}-${b}" in a character class`, `write it low to high: ${b}-${a}`);
      }
    }
    ranges.push(lo, hi);
  }
}

function bad(pattern: string, reason: string, hint: string): BadPatternError {
  return new BadPatternError(pattern, reason, { hint: `${hint} (pattern syntax: Go's filepath.Match)` });
}

function toCodePoints(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.codePointAt(i)!;
    out.push(c);
    if (c > 0xffff) i++;
  }
  return out;
}
