// Here-documents in RUN, COPY and ADD (Dockerfile reference, "Here-Documents"):
//   <<EOF      body up to a line that is exactly EOF; variables expand later
//   <<-EOF     leading tabs are stripped from body lines and the terminator
//   <<'EOF' <<"EOF" (any quoting in the word)   body is literal: no expansion
//   3<<EOF     a file descriptor for the redirect (RUN)
// Several may appear on one line; bodies follow in order.
//
// A heredoc marker is a whole shell word of the instruction line (quotes and
// escapes kept), so `cat<<EOF` or `"<<EOF"` are not heredocs, as in BuildKit.

import type { Heredoc } from './ast';
import { lexWords } from './shell';

const noEnv = (): undefined => undefined;
// Blanks may follow << (the lexer keeps `<< EOF` as one word); \s is Go's [\t\n\f\r ].
const reHeredoc = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

// The heredoc a single word introduces, or undefined.
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = reHeredoc.exec(word);
  if (!m) return undefined;
  const [, fd, dash, rest] = m;
  if (rest === '') return undefined;
  // Lex the delimiter with and without quote removal: if they differ, part of
  // it was quoted and the body must not be expanded.
  const plain = lexWords(rest, noEnv, { skipUnsetEnv: true }).words;
  if (plain.length !== 1) return undefined;
  const raw = lexWords(rest, noEnv, { skipUnsetEnv: true, rawQuotes: true }).words;
  const quotes = (s: string): number => s.split('').filter((c) => c === '"' || c === "'").length;
  const h: Omit<Heredoc, 'content'> = {
    name: plain[0],
    expand: quotes(plain[0]) === quotes(raw[0] ?? ''),
    chomp: dash === '-',
  };
  if (fd !== '') h.fileDescriptor = Number(fd);
  return h;
}

// The heredocs an instruction line introduces, in order.
export function heredocsFromLine(line: string): Omit<Heredoc, 'content'>[] {
  let words: string[];
  try {
    // unset-variable references stay as written: `<<$EOF` ends at a line `$EOF`
    words = lexWords(line, noEnv, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    return []; // an unbalanced quote: no heredocs (the shell will complain later)
  }
  const out: Omit<Heredoc, 'content'>[] = [];
  for (const w of words) {
    const h = parseHeredocWord(w);
    if (h) out.push(h);
  }
  return out;
}

// Removes leading tabs from every line (for <<-).
export function chompHeredocContent(content: string): string {
  return content.replace(/^\t+/gm, '');
}
