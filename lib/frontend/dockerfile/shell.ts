// Shell-style word expansion for Dockerfile instructions ("Environment
// replacement" in the Dockerfile reference), with BuildKit's semantics:
//
//   $VAR ${VAR}                      value, or "" when unset
//   ${VAR:-w} ${VAR-w}               w when VAR is unset (or empty, with ':')
//   ${VAR:+w} ${VAR+w}               w when VAR is set (and non-empty, with ':')
//   ${VAR:?msg} ${VAR?msg}           error `VAR: msg` when unset (or empty, with ':')
//   ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}   remove shortest/longest prefix/suffix matching glob p
//                                    (with ':' before # or %: error "unsupported modifier")
//   ${VAR/p/r} ${VAR//p/r}           replace first/all matches of glob p with r
//   '...'                            literal
//   "..."                            expansion inside; escape only before $ " and the escape token
//   <escape>c                        literal c (the escape token is \ or ` per `# escape=`)
//   $ before a non-name character    literal $
//   $1 $@ $* $# ...                  looked up like any name (normally unset → "")
//
// expandWord returns one string; expandWords also splits on unquoted
// whitespace (only whitespace that is literal or comes from an unquoted
// expansion splits; quoted text never does). As in BuildKit, a word that ends
// up empty is dropped, even when it was written as "".
//
// Which to use (BuildKit's behaviour): every argument the parser already split
// (FROM, COPY/ADD sources and destination, VOLUME, EXPOSE words) and every
// single-argument instruction (USER, WORKDIR, STOPSIGNAL, ENV/LABEL/ARG keys and
// values, flag values) is expanded as ONE word with expandWord. The only
// splitting after expansion is EXPOSE, whose expanded words may hold several
// ports (`EXPOSE $PORTS`): expandWords fits that. RUN/CMD/ENTRYPOINT shell form
// is not expanded by the frontend at all (the shell does it).

import { compileGlob, type Glob } from '../../util/glob';
import { ShellExpansionError } from './errors';

export type EnvLookup = ReadonlyMap<string, string> | ((name: string) => string | undefined);

export interface ExpandResult {
  value: string;
  matched: string[]; // variables referenced that were set
  unmatched: string[]; // variables referenced that were unset
}

export interface ExpandOptions {
  escapeToken?: '\\' | '`';
}

export interface LexerOptions extends ExpandOptions {
  // Keep quote characters in the output (used to find heredoc words).
  rawQuotes?: boolean;
  // Keep escape characters in the output.
  rawEscapes?: boolean;
  // Leave references to unset variables as written ("$FOO" / "${FOO}").
  skipUnsetEnv?: boolean;
  // Quotes are ordinary characters (BuildKit's SkipProcessQuotes, used for heredoc bodies).
  skipProcessQuotes?: boolean;
}

export function expandWord(word: string, env: EnvLookup, opts?: ExpandOptions): ExpandResult {
  const lx = new Lexer(word, env, opts ?? {});
  const { value } = lx.run();
  return { value, matched: [...lx.matched], unmatched: [...lx.unmatched] };
}

export function expandWords(
  word: string,
  env: EnvLookup,
  opts?: ExpandOptions,
): { words: string[]; matched: string[]; unmatched: string[] } {
  const lx = new Lexer(word, env, opts ?? {});
  const { words } = lx.run();
  return { words, matched: [...lx.matched], unmatched: [...lx.unmatched] };
}

// Lower-level entry with the extra lexer switches (the parser uses it for heredocs).
export function lexWords(word: string, env: EnvLookup, opts: LexerOptions): { value: string; words: string[] } {
  return new Lexer(word, env, opts).run();
}

const EOF = -1;
const CH_DOLLAR = 0x24;
const CH_LBRACE = 0x7b;
const CH_RBRACE = 0x7d;
const CH_COLON = 0x3a;
const CH_SQUOTE = 0x27;
const CH_DQUOTE = 0x22;
const CH_SLASH = 0x2f;
const CH_LT = 0x3c;

const reLetter = /^\p{L}$/u;
const reDigit = /^\p{Nd}$/u;
const reSpace = /^\s$/u;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39 ? true : c > 0x7f && reDigit.test(String.fromCodePoint(c));
}
function isLetter(c: number): boolean {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return c > 0x7f && reLetter.test(String.fromCodePoint(c));
}
// Go's unicode.IsSpace: \t \n \v \f \r space, U+0085, U+00A0 and the Unicode White_Space set.
export function isSpaceCode(c: number): boolean {
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return true;
  if (c < 0x80) return false;
  if (c === 0xfeff) return false; // JS \s includes the BOM; Go's IsSpace does not
  return c === 0x85 || c === 0xa0 || reSpace.test(String.fromCodePoint(c));
}
// Go's strings.TrimSpace (JS trim() also strips U+FEFF, which Go keeps).
export function goTrimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpaceCode(s.charCodeAt(a))) a++;
  while (b > a && isSpaceCode(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

// Special parameters of POSIX sh (`$@`, `$#`...): a one-character name.
function isSpecialParam(c: number): boolean {
  return c === 0x40 || c === 0x2a || c === 0x23 || c === 0x3f || c === 0x2d || c === 0x24 || c === 0x21 || c === 0x30;
}

// Accumulates words for splitting: unquoted literal whitespace ends a word,
// quoted text is added raw.
class Words {
  words: string[] = [];
  word = '';
  inWord = false;
  addChar(c: number): void {
    if (isSpaceCode(c)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(c);
    }
  }
  addRawChar(c: number): void {
    this.word += String.fromCodePoint(c);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Lexer {
  private pos = 0;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly escape: number;
  private readonly rawQuotes: boolean;
  private readonly rawEscapes: boolean;
  private readonly skipUnset: boolean;
  private readonly skipQuotes: boolean;
  private readonly lookup: (name: string) => string | undefined;

  constructor(
    private readonly src: string,
    env: EnvLookup,
    opts: LexerOptions,
  ) {
    this.escape = (opts.escapeToken ?? '\\').charCodeAt(0);
    this.rawQuotes = opts.rawQuotes ?? false;
    this.rawEscapes = opts.rawEscapes ?? false;
    this.skipUnset = opts.skipUnsetEnv ?? false;
    this.skipQuotes = opts.skipProcessQuotes ?? false;
    this.lookup = typeof env === 'function' ? env : (n) => env.get(n);
  }

  run(): { value: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private fail(msg: string): never {
    throw new ShellExpansionError(msg, this.src);
  }

  private peek(): number {
    return this.pos < this.src.length ? this.src.codePointAt(this.pos)! : EOF;
  }
  private next(): number {
    if (this.pos >= this.src.length) return EOF;
    const c = this.src.codePointAt(this.pos)!;
    this.pos += c > 0xffff ? 2 : 1;
    return c;
  }

  private getEnv(name: string): { value: string; set: boolean } {
    const v = this.lookup(name);
    if (v === undefined) {
      this.unmatched.add(name);
      return { value: '', set: false };
    }
    this.matched.add(name);
    return { value: v, set: true };
  }

  // Reads up to `stop` (consumed) or the end of input (stop === EOF).
  private processStopOn(stop: number, rawEscapes: boolean): { value: string; words: string[] } {
    let result = '';
    const words = new Words();
    for (;;) {
      const c = this.peek();
      if (c === EOF) break;
      if (stop !== EOF && c === stop) {
        this.next();
        return { value: result, words: words.finish() };
      }
      if (c === CH_LT) {
        // As BuildKit's lexer: `<<` keeps the blanks after it in its word, so
        // `<< EOF` stays one word for heredoc detection (the text is unchanged).
        const tmp = this.possibleHeredoc();
        result += tmp;
        words.addRawString(tmp);
        continue;
      }
      if (c === CH_DOLLAR || (!this.skipQuotes && (c === CH_SQUOTE || c === CH_DQUOTE))) {
        const tmp = c === CH_SQUOTE ? this.processSingleQuote() : c === CH_DQUOTE ? this.processDoubleQuote() : this.processDollar();
        result += tmp;
        // Unquoted expansions split; quoted text stays one piece.
        if (c === CH_DOLLAR) words.addString(tmp);
        else words.addRawString(tmp);
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        if (rawEscapes) {
          words.addRawChar(ch);
          result += String.fromCodePoint(ch);
        }
        ch = this.next();
        if (ch === EOF) break; // a trailing escape is dropped
        words.addRawChar(ch);
      } else {
        words.addChar(ch);
      }
      result += String.fromCodePoint(ch);
    }
    if (stop !== EOF) {
      this.fail(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
    }
    return { value: result, words: words.finish() };
  }

  private possibleHeredoc(): string {
    this.next(); // <
    if (this.peek() !== CH_LT) return '<';
    this.next();
    let out = '<<';
    for (let c = this.peek(); c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a; c = this.peek()) {
      out += String.fromCharCode(c);
      this.next();
    }
    return out;
  }

  private processSingleQuote(): string {
    // Everything up to the next ' is literal; ' cannot be escaped inside.
    let result = '';
    const open = this.next();
    if (this.rawQuotes) result += String.fromCodePoint(open);
    for (;;) {
      const c = this.next();
      if (c === EOF) this.fail('unexpected end of statement while looking for matching single-quote');
      if (c === CH_SQUOTE) {
        if (this.rawQuotes) result += "'";
        return result;
      }
      result += String.fromCodePoint(c);
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.rawQuotes) result += String.fromCodePoint(open);
    for (;;) {
      const c = this.peek();
      if (c === EOF) this.fail('unexpected end of statement while looking for matching double-quote');
      if (c === CH_DQUOTE) {
        this.next();
        if (this.rawQuotes) result += '"';
        return result;
      }
      if (c === CH_DOLLAR) {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        const n = this.peek();
        if (n === EOF) continue; // dropped; the missing quote is reported next
        if (n === CH_DQUOTE || n === CH_DOLLAR || n === this.escape) {
          if (this.rawEscapes) result += String.fromCodePoint(ch);
          ch = this.next();
        }
        // any other escape stays as written, followed by the next char
      }
      result += String.fromCodePoint(ch);
    }
  }

  private processName(): string {
    let name = '';
    for (;;) {
      const c = this.peek();
      if (c === EOF) break;
      if (name.length === 0 && isDigit(c)) {
        // $1, $12: positional parameters are all digits
        while (this.peek() !== EOF && isDigit(this.peek())) name += String.fromCodePoint(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(c)) {
        return String.fromCodePoint(this.next());
      }
      if (!isLetter(c) && !isDigit(c) && c !== 0x5f) break;
      name += String.fromCodePoint(this.next());
    }
    return name;
  }

  private depth = 0;

  private processDollar(): string {
    // ${a:-${b:-${c...}}} nests by recursion; bound it so hostile input gets an error, not a stack overflow
    if (++this.depth > 500) this.fail('syntax error: substitutions nested too deeply');
    try {
      return this.processDollarInner();
    } finally {
      this.depth--;
    }
  }

  private processDollarInner(): string {
    this.next(); // $
    if (this.peek() !== CH_LBRACE) {
      const name = this.processName();
      if (name === '') return '$';
      const { value, set } = this.getEnv(name);
      if (!set && this.skipUnset) return '$' + name;
      return value;
    }
    this.next(); // {
    const first = this.peek();
    if (first === EOF) this.fail("syntax error: missing '}'");
    if (first === CH_LBRACE || first === CH_RBRACE || first === CH_COLON) this.fail('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    if (ch === EOF) this.fail("syntax error: missing '}'");
    let mod = String.fromCodePoint(ch);

    if (ch === CH_RBRACE) {
      const { value, set } = this.getEnv(name);
      if (!set && this.skipUnset) return '${' + name + '}';
      return value;
    }

    if (ch === CH_SLASH) {
      const all = this.peek() === CH_SLASH;
      if (all) this.next();
      const pattern = this.wordUntil(CH_SLASH, true, "syntax error: missing '/' in ${}");
      const replacement = this.wordUntil(CH_RBRACE, true, "syntax error: missing '}'");
      const { value, set } = this.getEnv(name);
      if (!set && this.skipUnset) return '${' + name + (all ? '//' : '/') + pattern + '/' + replacement + '}';
      return replaceMatches(value, pattern, replacement, all, (m) => this.fail(m));
    }

    let nullIsUnset = false;
    if (ch === CH_COLON) {
      nullIsUnset = true;
      ch = this.next();
      mod += ch === EOF ? '' : String.fromCodePoint(ch);
    }
    const isTrim = ch === 0x23 /* # */ || ch === 0x25; /* % */
    // `${V:#p}` and `${V:%p}` mean nothing in sh; BuildKit rejects them before
    // reading the word (so even for an unset V), naming the two characters.
    if (nullIsUnset && isTrim) this.fail(`unsupported modifier (${mod}) in substitution`);
    const word = this.wordUntil(CH_RBRACE, isTrim, "syntax error: missing '}'");
    const { value, set } = this.getEnv(name);
    if (!set && this.skipUnset) return '${' + name + mod + word + '}';
    switch (ch) {
      case 0x2d: // -
        return !set || (nullIsUnset && value === '') ? word : value;
      case 0x2b: // +
        return !set || (nullIsUnset && value === '') ? '' : word;
      case 0x3f: // ?
        if (!set) this.fail(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') this.fail(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case 0x23: // #
      case 0x25: {
        // %
        let pat = word;
        let greedy = false;
        if (pat.length > 0 && pat.codePointAt(0) === ch) {
          greedy = true;
          pat = pat.slice(1);
        }
        const fail = (m: string): never => this.fail(m);
        return ch === 0x23 ? trimPrefix(value, pat, greedy, fail) : trimSuffix(value, pat, greedy, fail);
      }
      default:
        return this.fail(`unsupported modifier (${mod}) in substitution`);
    }
  }

  // The word part of ${...}: up to `stop`, reporting `missing` at end of input.
  private wordUntil(stop: number, rawEscapes: boolean, missing: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).value;
    } catch (e) {
      if (e instanceof ShellExpansionError && this.pos >= this.src.length) this.fail(missing);
      throw e;
    }
  }
}

// ---- patterns of ${VAR#p} ${VAR%p} ${VAR/p/r} ----

// String.fromCodePoint without spreading a huge argument list.
function fromCodePoints(cps: readonly number[]): string {
  let out = '';
  for (let i = 0; i < cps.length; i += 4096) out += String.fromCodePoint(...cps.slice(i, i + 4096));
  return out;
}

export function codePoints(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.codePointAt(i)!;
    out.push(c);
    if (c > 0xffff) i++;
  }
  return out;
}

// BuildKit's shell patterns are globs of util/glob.ts with these options: * and ?
// cross '/' but stop at a newline (BuildKit compiles them to Go regexps, whose '.'
// does), and '[' is an ordinary character (no bracket expressions).
const SHELL_GLOB = { separator: '\n', classes: false } as const;

class PatternError extends Error {}

// A shell pattern as BuildKit reads it, rewritten in the glob syntax: \*, \? and
// \\ are literal (kept as escapes); \} and \/ are the escaped delimiters (the
// backslash is dropped). Any other escape (\. \x, or a trailing \) is invalid.
function shellPatternToGlob(pattern: string): string {
  const cps = codePoints(pattern);
  let out = '';
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    if (c === 0x5c /* \ */) {
      const n = i + 1 < cps.length ? cps[i + 1] : EOF;
      if (n === CH_RBRACE || n === CH_SLASH) continue; // the next round adds it
      if (n !== 0x2a && n !== 0x3f && n !== 0x5c) {
        throw new PatternError(`invalid escape '\\${n === EOF ? '\ufffd' : String.fromCodePoint(n)}'`);
      }
      out += '\\' + String.fromCodePoint(n);
      i++;
      continue;
    }
    out += String.fromCodePoint(c);
  }
  return out;
}

// BuildKit reverses a %-pattern to match it as a prefix of the reversed value,
// keeping each escape before the character it escapes (its error messages show
// the reversed text).
function reversePatternText(pattern: string): string {
  const cps = codePoints(pattern);
  const out: number[] = [];
  for (let i = 0; i < cps.length; ) {
    if (cps[i] === 0x5c && i !== cps.length - 1) {
      out.unshift(cps[i], cps[i + 1]);
      i += 2;
    } else out.unshift(cps[i++]);
  }
  return fromCodePoints(out);
}

function compileShellPattern(pattern: string, fail: (msg: string) => never): Glob {
  let text: string;
  try {
    text = shellPatternToGlob(pattern);
  } catch (e) {
    if (e instanceof PatternError) fail(`invalid pattern (${pattern}) in substitution: ${e.message}`);
    throw e;
  }
  return compileGlob(text, SHELL_GLOB);
}

export function matchShellPattern(pattern: string, value: string): boolean {
  return compileGlob(shellPatternToGlob(pattern), SHELL_GLOB).matches(value);
}

// One pass over the value, whatever the pattern: the automaton reads the value
// once and reports the shortest or longest matching prefix.
function trimPrefix(value: string, pattern: string, longest: boolean, fail: (msg: string) => never): string {
  const glob = compileShellPattern(pattern, fail);
  const cps = codePoints(value);
  const n = glob.matchPrefix(cps, longest);
  return n <= 0 ? value : fromCodePoints(cps.slice(n));
}

function trimSuffix(value: string, pattern: string, longest: boolean, fail: (msg: string) => never): string {
  const glob = compileShellPattern(reversePatternText(pattern), fail);
  const rev = codePoints(value).reverse();
  const n = glob.matchPrefix(rev, longest);
  return n <= 0 ? value : fromCodePoints(rev.slice(n).reverse());
}

// Replaces the leftmost-longest match (or every non-overlapping one), as Go's
// regexp FindStringIndex / ReplaceAllString do for these patterns: after a match
// the search goes on at its end (one character further for an empty one), and an
// empty match right where the previous one ended is not replaced. The first-match
// form inserts the replacement as is; the replace-all form goes through Go's
// template expansion as in BuildKit, so there `$0`/`${0}` stand for the match,
// `$$` for '$', and other `$name` references for "" (the pattern has no groups).
function replaceMatches(value: string, pattern: string, replacement: string, all: boolean, fail: (msg: string) => never): string {
  const glob = compileShellPattern(pattern, fail);
  const cps = codePoints(value);
  const templated = all && replacement.includes('$');
  let out = '';
  let lastEnd = 0;
  for (let pos = 0; pos <= cps.length; ) {
    const m = glob.find(cps, pos);
    if (!m) break;
    const [start, end] = m;
    out += fromCodePoints(cps.slice(lastEnd, start));
    if (end > lastEnd || start === 0) {
      out += templated ? expandGoTemplate(replacement, fromCodePoints(cps.slice(start, end))) : replacement;
    }
    lastEnd = end;
    if (!all) break;
    pos = Math.max(end, pos + 1);
  }
  return out + fromCodePoints(cps.slice(lastEnd));
}

// Go's regexp template expansion for a match without capture groups.
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const d = template.indexOf('$', i);
    if (d < 0) return out + template.slice(i);
    out += template.slice(i, d);
    i = d + 1;
    if (template[i] === '$') {
      out += '$';
      i++;
      continue;
    }
    // $name or ${name}: the longest run of letters, digits and '_'
    const brace = template[i] === '{';
    let j = brace ? i + 1 : i;
    let name = '';
    for (const ch of template.slice(j)) {
      const c = ch.codePointAt(0)!;
      if (!isLetter(c) && !isDigit(c) && c !== 0x5f) break;
      name += ch;
    }
    j += name.length;
    if (name === '' || (brace && template[j] !== '}')) {
      out += '$'; // malformed: the '$' is kept as text
      continue;
    }
    i = brace ? j + 1 : j;
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
  }
}
