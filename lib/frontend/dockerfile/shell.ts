// Shell-style word expansion for Dockerfile instructions ("Environment
// replacement" in the Dockerfile reference), with BuildKit's semantics:
//
//   $VAR ${VAR}                      value, or "" when unset
//   ${VAR:-w} ${VAR-w}               w when VAR is unset (or empty, with ':')
//   ${VAR:+w} ${VAR+w}               w when VAR is set (and non-empty, with ':')
//   ${VAR:?msg} ${VAR?msg}           error `VAR: msg` when unset (or empty, with ':')
//   ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}   remove shortest/longest prefix/suffix matching glob p
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
// Which instructions split words is the converter's business; BuildKit
// expands without splitting everywhere except ONBUILD-less "word list" places
// it documents — see docs/dockerfile-syntax.md.

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
  return c === 0x85 || c === 0xa0 || reSpace.test(String.fromCodePoint(c));
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
      if (c === CH_SQUOTE || c === CH_DQUOTE || c === CH_DOLLAR) {
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

  private processDollar(): string {
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
      return replaceMatches(value, pattern, replacement, all);
    }

    let nullIsUnset = false;
    if (ch === CH_COLON) {
      nullIsUnset = true;
      ch = this.next();
      mod += ch === EOF ? '' : String.fromCodePoint(ch);
    }
    const isTrim = ch === 0x23 /* # */ || ch === 0x25; /* % */
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
        return ch === 0x23 ? trimPrefix(value, pat, greedy) : trimSuffix(value, pat, greedy);
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

// ---- shell glob patterns (for # % / modifiers) ----

const reMeta = /[.*+?^${}()|[\]\\\/]/g; // no '-': `\-` is invalid outside a class with the u flag

// Converts a shell glob (`*`, `?`, `[...]`, `\x`) to a RegExp source. `*` matches
// any characters including '/', as in sh.
export function shellPatternToRegExpSource(pattern: string, lazy = false): string {
  let out = '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '*') out += lazy ? '[\\s\\S]*?' : '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\') {
      if (i + 1 < chars.length) out += chars[++i].replace(reMeta, '\\$&');
      else out += '\\\\';
    } else if (c === '[') {
      const cls = bracket(chars, i);
      if (cls) {
        out += cls.source;
        i = cls.end;
      } else out += '\\[';
    } else out += c.replace(reMeta, '\\$&');
  }
  return out;
}

// A bracket expression starting at chars[start] === '['; undefined when unterminated.
function bracket(chars: string[], start: number): { source: string; end: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (chars[i] === '!' || chars[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  let first = true;
  for (; i < chars.length; i++) {
    let c = chars[i];
    if (c === ']' && !first) return { source: `[${negate ? '^' : ''}${body}]`, end: i };
    first = false;
    if (c === '\\' && i + 1 < chars.length) c = chars[++i];
    if (c === '-' && body !== '' && chars[i + 1] !== undefined && chars[i + 1] !== ']') {
      body += '-';
      continue;
    }
    body += c.replace(/[\\\]\[^-]/g, '\\$&');
  }
  return undefined;
}

function compileAnchored(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${shellPatternToRegExpSource(pattern)})$`, 'u');
  } catch {
    return undefined; // e.g. a reversed range [z-a]: matches nothing
  }
}

function trimPrefix(value: string, pattern: string, longest: boolean): string {
  const re = compileAnchored(pattern);
  if (!re) return value;
  const cps = Array.from(value);
  if (longest) {
    for (let n = cps.length; n >= 0; n--) if (re.test(cps.slice(0, n).join(''))) return cps.slice(n).join('');
  } else {
    for (let n = 0; n <= cps.length; n++) if (re.test(cps.slice(0, n).join(''))) return cps.slice(n).join('');
  }
  return value;
}

function trimSuffix(value: string, pattern: string, longest: boolean): string {
  const re = compileAnchored(pattern);
  if (!re) return value;
  const cps = Array.from(value);
  if (longest) {
    for (let n = 0; n <= cps.length; n++) if (re.test(cps.slice(n).join(''))) return cps.slice(0, n).join('');
  } else {
    for (let n = cps.length; n >= 0; n--) if (re.test(cps.slice(n).join(''))) return cps.slice(0, n).join('');
  }
  return value;
}

function replaceMatches(value: string, pattern: string, replacement: string, all: boolean): string {
  let re: RegExp;
  try {
    re = new RegExp(shellPatternToRegExpSource(pattern), all ? 'gu' : 'u');
  } catch {
    return value;
  }
  // The replacement is literal text: no $& / $1 interpretation.
  return value.replace(re, () => replacement);
}
