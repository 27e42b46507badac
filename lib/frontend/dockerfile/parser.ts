// Dockerfile parser (Dockerfile reference, syntax 1.x): text → ParsedDockerfile.
//
// Two passes, like BuildKit: first the whole file is read into instructions
// (lines, directives, continuations, comments, heredocs, exec vs shell form,
// key=value lists); errors of that pass win over later ones. Then, unless only
// the syntax is wanted, each instruction becomes a typed command
// (instructions/parse.ts: known keyword, flags, argument counts, ONBUILD
// triggers, HEALTHCHECK options) and the build checks run (lint.ts). No
// expansion happens here: ARG/ENV substitution is the converter's job (shell.ts).

import type { Directive, Flag, Heredoc, Instruction, KeyValue, ParsedDockerfile } from './ast';
import { detectSyntax, isKnownDirective, matchDirective, resolveSyntax, type SyntaxInfo } from './directives';
import { DockerfileError, ShellExpansionError } from './errors';
import { chompHeredocContent, heredocsFromLine } from './heredoc';
import { commandsOf } from './instructions/parse';
import { HEREDOC_INSTRUCTIONS } from './instructions/table';
import { applyCheckPolicy, checkPolicy, lint } from './lint';
import { isSpaceCode } from './shell';

export interface ParseOptions {
  filename?: string; // for messages: `<filename>:<line>: ...` (default "Dockerfile")
  // false: only the syntax pass (BuildKit's parser.Parse level): unknown
  // instructions and flags, argument counts, ONBUILD triggers and HEALTHCHECK
  // options are not checked, build checks do not run. Default true (BuildKit's
  // parser + instruction parse).
  validate?: boolean;
}

const reWhitespace = /[\t\v\f\r ]+/;

type Warning = { message: string; line: number; endLine?: number; rule?: string };
// group 1: the character kept before the continuation token
const CONTINUATION_BACKSLASH = /([^\\])\\[ \t]*$|^\\[ \t]*$/;
const CONTINUATION_BACKTICK = /([^`])`[ \t]*$|^`[ \t]*$/;
const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

// bufio.MaxScanTokenSize - 1: the longest line BuildKit's line scanner accepts (bytes, newline excluded)
const MAX_LINE_BYTES = 65535;

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

// ---------------------------------------------------------------------------
// small string helpers with Go's notion of whitespace

function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpaceCode(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}
function trimSpace(s: string): string {
  let e = s.length;
  while (e > 0 && isSpaceCode(s.charCodeAt(e - 1))) e--;
  return trimLeftSpace(e === s.length ? s : s.slice(0, e));
}
function trimNewline(s: string): string {
  let e = s.length;
  while (e > 0 && (s.charCodeAt(e - 1) === 10 || s.charCodeAt(e - 1) === 13)) e--;
  return e === s.length ? s : s.slice(0, e);
}
function isComment(raw: string): boolean {
  return trimLeftSpace(trimNewline(raw)).startsWith('#');
}
function splitWhitespace(s: string): string[] {
  return s === '' ? [] : s.split(reWhitespace).filter((w) => w !== '');
}
// Splits into lines, each keeping its "\n" (heredoc bodies are taken verbatim).
function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
}

// ---------------------------------------------------------------------------
// flags: leading `--name[=value]` words (quotes and \ escapes removed);
// the first word not starting with `--` ends them, and a bare `--` word ends
// them and is dropped.

export function extractFlags(line: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  let pos = 0;
  const n = line.length;
  for (;;) {
    while (pos < n && isSpaceCode(line.charCodeAt(pos))) pos++;
    if (pos >= n) return { rest: '', flags: words };
    if (!(line[pos] === '-' && line[pos + 1] === '-')) return { rest: line.slice(pos), flags: words };
    let word = '';
    let blankOK = false;
    let quote = '';
    for (;;) {
      if (pos >= n) {
        if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
        return { rest: '', flags: words };
      }
      let ch = line[pos];
      if (quote === '') {
        if (isSpaceCode(line.charCodeAt(pos))) {
          if (word === '--') return { rest: line.slice(pos), flags: words };
          if (blankOK || word.length > 0) words.push(word);
          break;
        }
        if (ch === '"' || ch === "'") {
          quote = ch;
          blankOK = true;
          pos++;
          continue;
        }
      } else if (ch === quote) {
        quote = '';
        pos++;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 >= n) {
          pos++;
          quote = '';
          continue; // a trailing backslash is dropped
        }
        pos++;
        ch = line[pos];
      }
      word += ch;
      pos++;
    }
  }
}

function toFlag(word: string): Flag {
  const body = word.startsWith('--') ? word.slice(2) : word;
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body, value: null, raw: word } : { name: body.slice(0, eq), value: body.slice(eq + 1), raw: word };
}

// ---------------------------------------------------------------------------
// words of ENV/LABEL/ARG: split on whitespace outside quotes; quotes and
// escapes are kept (the expander removes them later).

export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let blankOK = false;
  let quote = '';
  const cps = Array.from(rest);
  for (let i = 0; i < cps.length; i++) {
    let ch = cps[i];
    if (!inWord) {
      if (isSpaceCode(ch.codePointAt(0)!)) continue;
      inWord = true;
    }
    if (quote === '') {
      if (isSpaceCode(ch.codePointAt(0)!)) {
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
      } else if (ch === escapeToken) {
        if (i + 1 === cps.length) continue; // an escape at the very end is dropped
        word += ch;
        ch = cps[++i];
      }
      word += ch;
    } else {
      if (ch === quote) quote = '';
      else if (ch === escapeToken && quote !== "'") {
        if (i + 1 === cps.length) {
          quote = '';
          continue;
        }
        word += ch;
        ch = cps[++i];
      }
      word += ch;
    }
  }
  if (inWord && (blankOK || word.length > 0)) words.push(word);
  return words;
}

// ---------------------------------------------------------------------------
// JSON (exec) form

type JsonResult = { ok: true; args: string[] } | { ok: false; notStrings: boolean };

// Go's encoding/json turns lone surrogates into U+FFFD.
const reLoneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function parseJSONArray(rest: string): JsonResult {
  const r = trimLeftSpace(rest);
  if (!r.startsWith('[')) return { ok: false, notStrings: false };
  let v: unknown;
  try {
    v = JSON.parse(r);
  } catch {
    return { ok: false, notStrings: false };
  }
  if (!Array.isArray(v)) return { ok: false, notStrings: false };
  // Go's decoder fails outright on a number out of float64 range (JSON.parse gives Infinity): not JSON
  if (v.some((e) => typeof e === 'number' && !Number.isFinite(e))) return { ok: false, notStrings: false };
  const args: string[] = [];
  for (const e of v) {
    if (typeof e !== 'string') return { ok: false, notStrings: true };
    args.push(e.replace(reLoneSurrogate, '\ufffd'));
  }
  return { ok: true, args };
}

// ---------------------------------------------------------------------------

interface Ctx {
  file: string;
  escape: '\\' | '`';
  endLine?: number; // last line of the logical line being built
}

class Parser {
  private readonly lines: string[];
  private i = 0;
  private currentLine = 0;
  private escape: '\\' | '`' = '\\';
  // As BuildKit: the escape token ends a line (before optional blanks) to
  // continue it, unless another escape token precedes it (`foo \\` ends the line).
  private reContinuation = CONTINUATION_BACKSLASH;
  private directivesDone = false;
  private readonly directives: Directive[] = [];
  private readonly warnings: Warning[] = [];
  syntax?: SyntaxInfo;

  constructor(
    text: string,
    private readonly file: string,
    private readonly validate: boolean,
  ) {
    this.text = text;
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    this.lines = splitLines(text);
    this.empty = this.lines.length === 0;
    // BuildKit reads lines with a bufio.Scanner: a line over 64 KiB stops the
    // read there (what precedes it is still parsed) and fails the parse.
    const long = this.lines.findIndex((l) => l.length > MAX_LINE_BYTES / 3 && utf8Length(trimNewline(l)) > MAX_LINE_BYTES);
    if (long >= 0) {
      this.lines = this.lines.slice(0, long);
      this.tooLongLine = long + 1;
    }
  }
  private tooLongLine = 0;
  private readonly text: string;
  private empty = false;

  private err(reason: string, line: number, extra: { endLine?: number; snippet?: string; hint?: string } = {}): never {
    throw new DockerfileError(reason, { file: this.file, line, ...extra });
  }

  private possibleDirective(line: string): void {
    if (this.directivesDone) return;
    const d = matchDirective(line);
    if (!d || !isKnownDirective(d.name)) {
      this.directivesDone = true;
      return;
    }
    const lineNo = this.currentLine + 1;
    if (this.directives.some((x) => x.name === d.name)) {
      this.err(`only one ${d.name} parser directive can be used`, lineNo, {
        snippet: trimNewline(line),
        hint: `remove the second "# ${d.name}=" line`,
      });
    }
    if (d.name === 'escape') {
      if (d.value !== '\\' && d.value !== '`') {
        this.err(`invalid escape token '${d.value}' does not match \` or \\`, lineNo, {
          snippet: trimNewline(line),
          hint: 'use "# escape=\\" (the default) or "# escape=`"',
        });
      }
      this.escape = d.value;
      this.reContinuation = d.value === '`' ? CONTINUATION_BACKTICK : CONTINUATION_BACKSLASH;
    } else if (d.name === 'syntax') {
      const info = resolveSyntax(d.value);
      if (!info) {
        this.err(
          `unsupported frontend ${JSON.stringify(d.value)}: only the built-in Dockerfile frontend is available`,
          lineNo,
          {
            snippet: trimNewline(line),
            hint: 'remove the "# syntax=" line or change it to "# syntax=docker/dockerfile:1"',
          },
        );
      }
      this.syntax = info;
    }
    this.directives.push({ name: d.name, value: d.value, line: lineNo });
  }

  // Reads a physical line: newline removed, comment lines blanked.
  private processLine(raw: string, stripLeft: boolean): string {
    let t = trimNewline(raw);
    if (stripLeft) t = trimLeftSpace(t);
    this.possibleDirective(t);
    return t.startsWith('#') ? '' : t;
  }

  private trimContinuation(line: string): { line: string; end: boolean } {
    const m = this.reContinuation.exec(line);
    return m ? { line: line.slice(0, m.index) + (m[1] ?? ''), end: false } : { line, end: true };
  }

  parse(): ParsedDockerfile {
    const instructions: Instruction[] = [];
    let comments: string[] = [];
    const ctx: Ctx = { file: this.file, escape: this.escape };

    while (this.i < this.lines.length) {
      const raw = this.lines[this.i++];
      if (isComment(raw)) {
        const c = trimSpace(trimLeftSpace(trimNewline(raw)).slice(1));
        if (c === '') comments = [];
        else comments.push(c);
      }
      const first = this.processLine(raw, true);
      this.currentLine++;
      const startLine = this.currentLine;
      let { line, end } = this.trimContinuation(first);
      if (end && line === '') {
        if (!isComment(raw)) comments = []; // a blank line ends a description comment
        continue;
      }

      let emptyContinuation = false;
      while (!end && this.i < this.lines.length) {
        const r = this.lines[this.i++];
        const processed = this.processLine(r, false);
        this.currentLine++;
        if (isComment(r)) continue; // comments inside a continuation are dropped
        if (trimLeftSpace(processed) === '') {
          emptyContinuation = true;
          continue;
        }
        const t = this.trimContinuation(processed);
        line += t.line;
        end = t.end;
      }
      if (emptyContinuation) {
        this.warnings.push({ message: 'Empty continuation line', line: startLine, endLine: this.currentLine, rule: 'NoEmptyContinuation' });
      }

      ctx.escape = this.escape;
      ctx.endLine = this.currentLine;
      const ins = buildInstruction(line, ctx, startLine, comments);

      // ONBUILD RUN/COPY/ADD reads its heredocs too (BuildKit looks through ONBUILD at its trigger)
      const target = ins.keyword === 'ONBUILD' && ins.onbuild ? ins.onbuild : ins;
      if (HEREDOC_INSTRUCTIONS.has(target.keyword) && !target.json && target.args.length > 0 && line.includes('<<')) {
        let found: ReturnType<typeof heredocsFromLine>;
        try {
          found = heredocsFromLine(line);
        } catch (e) {
          if (!(e instanceof ShellExpansionError)) throw e;
          return this.err(`invalid heredoc: ${e.message}`, startLine, { endLine: this.currentLine, snippet: line });
        }
        for (const h of found) ins.heredocs.push(this.readHeredoc(h, startLine));
        if (target !== ins) target.heredocs = ins.heredocs;
      }
      ins.endLine = this.currentLine;
      if (ins.onbuild) ins.onbuild.endLine = this.currentLine;
      instructions.push(ins);
      comments = [];
    }

    if (!this.syntax) this.syntaxFromOtherForms();

    if (instructions.length === 0) {
      if (this.empty) {
        this.err(`the Dockerfile (${this.file}) cannot be empty`, 1, { hint: 'add a FROM instruction' });
      }
      this.err('file with no instructions', Math.max(1, this.currentLine), { hint: 'add a FROM instruction' });
    }
    if (this.tooLongLine) {
      this.err(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, this.tooLongLine, {
        hint: 'split the line with line continuations, or move the data into a file in the build context',
      });
    }

    const result: ParsedDockerfile = {
      directives: this.directives,
      escapeToken: this.escape,
      instructions,
      warnings: this.warnings,
    };
    if (this.validate) {
      commandsOf(result, { file: this.file, syntax: this.syntax });
      this.warnings.push(...lint(instructions));
    }
    this.warnings.sort((a, b) => a.line - b.line); // stable: same-line warnings keep their order
    // Skipped and not-enabled rules go now; `error=true` is the converter's,
    // once the rules it runs have spoken too.
    const check = this.directives.find((x) => x.name === 'check');
    result.warnings = applyCheckPolicy(result.warnings, checkPolicy(check?.value));
    return result;
  }

  // BuildKit also takes the frontend from `# syntax=` after a `#!` line, from
  // `// syntax=` lines or from a JSON file's "syntax" key (parser.DetectSyntax).
  private syntaxFromOtherForms(): void {
    const ds = detectSyntax(this.text);
    if (!ds) return;
    const info = resolveSyntax(ds.ref);
    if (!info) {
      this.err(
        `unsupported frontend ${JSON.stringify(ds.ref)}: only the built-in Dockerfile frontend is available`,
        Math.max(1, ds.line),
        { hint: 'remove the syntax line or change it to "# syntax=docker/dockerfile:1"' },
      );
    }
    this.syntax = info;
  }

  private readHeredoc(h: Omit<Heredoc, 'content'>, startLine: number): Heredoc {
    let content = '';
    while (this.i < this.lines.length) {
      const raw = this.lines[this.i++];
      this.currentLine++;
      let candidate = trimNewline(raw);
      if (h.chomp) candidate = candidate.replace(/^\t+/, '');
      if (candidate === h.name) {
        if (content.includes('\r\n')) {
          // BuildKit keeps the carriage returns of a CRLF file in heredoc bodies; so do we, but say so
          this.warnings.push({
            message: `heredoc ${h.name} has CRLF line endings: the carriage returns are part of its content (convert the Dockerfile to LF line endings)`,
            line: startLine,
          });
        }
        return { ...h, content: h.chomp ? chompHeredocContent(content) : content };
      }
      content += raw;
    }
    return this.err(`unterminated heredoc ${h.name}`, startLine, {
      endLine: this.currentLine,
      hint: `end the here-document with a line containing only "${h.name}"`,
    });
  }
}

// ---------------------------------------------------------------------------
// pass 1: one logical line → Instruction (shape only)

function buildInstruction(line: string, ctx: Ctx, startLine: number, comments: string[], nested = false): Instruction {
  const trimmed = trimSpace(line);
  const m = reWhitespace.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  const afterCmd = m ? trimmed.slice(m.index + m[0].length) : '';
  const { rest: restRaw, flags } = extractFlags(afterCmd);
  const rest = trimSpace(restRaw);
  const keyword = cmd.toUpperCase();
  const ins: Instruction = {
    keyword,
    flags: flags.map(toFlag),
    json: false,
    args: [],
    heredocs: [],
    startLine,
    endLine: startLine,
    original: line,
    comments: [...comments],
  };
  const fail = (reason: string, hint?: string): never => {
    throw new DockerfileError(reason, { file: ctx.file, line: startLine, endLine: ctx.endLine, snippet: line, hint });
  };
  const maybeJSON = (text: string, toList: boolean): void => {
    if (text === '') return;
    const j = parseJSONArray(text);
    if (j.ok) {
      ins.json = true;
      ins.args = j.args;
    } else if (j.notStrings) {
      fail(NOT_STRING_ARRAY, 'quote every element: ["executable", "param1"]');
    } else {
      ins.args = toList ? splitWhitespace(text) : [text];
    }
  };

  switch (keyword) {
    case 'ADD':
    case 'COPY':
    case 'VOLUME':
      maybeJSON(rest, true);
      break;
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT':
    case 'SHELL':
      maybeJSON(rest, false);
      break;
    case 'ENV':
    case 'LABEL':
      parseNameVal(ins, rest, ctx, fail);
      break;
    case 'ARG': {
      const words = parseWords(rest, ctx.escape);
      ins.args = words;
      ins.keyValues = words.map((w): KeyValue => {
        const eq = w.indexOf('=');
        return eq < 0 ? { key: w, value: '', hasEquals: false } : { key: w.slice(0, eq), value: w.slice(eq + 1), hasEquals: true };
      });
      break;
    }
    case 'HEALTHCHECK': {
      if (rest === '') break;
      let sep = 0;
      while (sep < rest.length && !isSpaceCode(rest.charCodeAt(sep))) sep++;
      const typ = rest.slice(0, sep);
      const cmdText = trimLeftSpace(rest.slice(sep));
      maybeJSON(cmdText, false);
      ins.args = [typ, ...ins.args];
      break;
    }
    case 'ONBUILD':
      if (rest !== '') {
        ins.args = [rest];
        // one level is enough: `ONBUILD ONBUILD …` is rejected, and deeper nesting must not recurse
        if (!nested) ins.onbuild = buildInstruction(rest, ctx, startLine, [], true);
      }
      break;
    case 'MAINTAINER':
    case 'STOPSIGNAL':
    case 'USER':
    case 'WORKDIR':
      if (rest !== '') ins.args = [rest];
      break;
    case 'FROM':
    case 'EXPOSE':
      ins.args = splitWhitespace(rest);
      break;
    default:
      // An unknown word (reported in pass 2): BuildKit's parser drops its
      // arguments and keeps one empty node; so do we.
      ins.args = [''];
  }
  return ins;
}

function parseNameVal(ins: Instruction, rest: string, ctx: Ctx, fail: (reason: string, hint?: string) => never): void {
  const words = parseWords(rest, ctx.escape);
  if (words.length === 0) return;
  const kw = ins.keyword;
  if (!words[0].includes('=')) {
    // legacy `ENV key value...`: the value is the rest of the line
    const m = reWhitespace.exec(rest);
    if (!m) fail(`${kw} must have two arguments`, `write ${kw} ${rest}=<value>`);
    const key = rest.slice(0, m.index);
    const value = rest.slice(m.index + m[0].length);
    ins.args = [key, value];
    ins.keyValues = [{ key, value, hasEquals: false }]; // the legacy form (lint: LegacyKeyValueFormat)
    return;
  }
  ins.keyValues = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) {
      fail(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`, 'quote values that contain spaces: name="a value"');
    }
    const key = w.slice(0, eq);
    const value = w.slice(eq + 1);
    ins.keyValues.push({ key, value, hasEquals: true });
    ins.args.push(key, value);
  }
}

export function parseDockerfile(text: string, opts?: ParseOptions): ParsedDockerfile {
  return new Parser(text, opts?.filename ?? 'Dockerfile', opts?.validate ?? true).parse();
}
