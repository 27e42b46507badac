// Errors a Dockerfile author can cause. Pure TypeScript (no node: imports):
// the frontend must bundle for a neutral platform (util/errors is pure too).

import { DockerfileSyntaxError } from '../../util/errors';
//
// Message format (one line): `Dockerfile:12: unknown instruction: RUNN (did you mean RUN?)`
// — the file name, the 1-based line, then what is wrong, quoting the offending text.

export interface DockerfileErrorOptions {
  file?: string;
  line: number;
  endLine?: number;
  snippet?: string; // the offending source text (the instruction as written)
  hint?: string; // what to do about it
  cause?: unknown;
}

// The catalogue's DockerfileSyntaxError (code IMG_ERR_DOCKERFILE) with the location.
export class DockerfileError extends DockerfileSyntaxError {
  readonly file: string;
  readonly line: number;
  readonly endLine?: number;
  readonly snippet?: string;
  // The bare reason, without the `file:line:` prefix (for callers that re-wrap).
  readonly reason: string;
  // For `# check=error=true`: the build checks that failed the build, to show first.
  warnings?: { message: string; line?: number; endLine?: number; rule?: string }[];

  constructor(reason: string, opts: DockerfileErrorOptions) {
    const file = opts.file ?? 'Dockerfile';
    super(`${file}:${opts.line}: ${reason}`, {
      hint: opts.hint,
      detail: opts.snippet === undefined ? undefined : `${file}:${opts.line}: ${opts.snippet}`,
      cause: opts.cause,
    });
    this.name = 'DockerfileError';
    this.file = file;
    this.line = opts.line;
    if (opts.endLine !== undefined && opts.endLine !== opts.line) this.endLine = opts.endLine;
    this.snippet = opts.snippet;
    this.reason = reason;
  }
}

// A failure of shell word expansion ($VAR, ${VAR:?msg}, quotes...). It carries no
// location: the expander works on a single word. Callers that know the
// instruction turn it into a DockerfileError with `locateShellError`.
// `message` is BuildKit's wording, e.g. `VAR: is not allowed to be unset`.
export class ShellExpansionError extends DockerfileSyntaxError {
  readonly word: string;
  constructor(message: string, word: string) {
    super(message, { hint: 'fix the variable reference (see "Environment replacement" in the Dockerfile reference)' });
    this.name = 'ShellExpansionError';
    this.word = word;
  }
}

// Wrap a shell expansion error the way BuildKit reports it:
// `Dockerfile:3: failed to process "${X:?}": X: is not allowed to be unset`.
export function locateShellError(
  err: ShellExpansionError,
  where: { file?: string; line: number; endLine?: number; snippet?: string },
): DockerfileError {
  return new DockerfileError(`failed to process ${JSON.stringify(err.word)}: ${err.message}`, {
    ...where,
    hint: 'fix the variable reference (see "Environment replacement" in the Dockerfile reference)',
    cause: err,
  });
}

// Levenshtein distance, for "did you mean" suggestions.
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

// BuildKit's util/suggest: the closest candidate at edit distance 2 or less
// (the first one wins a tie); an exact match means the word was not the
// problem, so no suggestion. Without caseSensitive the answer takes the
// word's case: "runn" → "run", "RUNN" → "RUN".
export function suggest(word: string, candidates: readonly string[], caseSensitive = false): string | undefined {
  const w = caseSensitive ? word : word.toLowerCase();
  let best: string | undefined;
  let min = 3;
  for (const c of candidates) {
    const o = caseSensitive ? c : c.toLowerCase();
    if (o === w) return undefined;
    const d = editDistance(w, o);
    if (d < min) {
      min = d;
      best = caseSensitive ? o : matchCase(o, word);
    }
  }
  return best;
}

function matchCase(val: string, orig: string): string {
  if (orig === orig.toLowerCase()) return val.toLowerCase();
  if (orig === orig.toUpperCase()) return val.toUpperCase();
  return val;
}
