// The parser's output: the contract between lib/frontend/dockerfile/parser.ts
// and the typed commands (instructions/parse.ts). Pure data, no behaviour.

export interface Directive {
  name: string; // lower-case: "syntax", "escape", "check"
  value: string;
  line: number; // 1-based
}

export interface Heredoc {
  name: string; // the delimiter word, without quotes
  content: string; // body, including the trailing newline of each line
  expand: boolean; // false when the delimiter was quoted ('EOF' or "EOF")
  chomp: boolean; // <<- : leading tabs were stripped
  fileDescriptor?: number; // 3<<EOF
}

export interface Flag {
  name: string; // without the leading "--", e.g. "from", "mount"
  value: string | null; // null for a bare boolean flag (`--link`)
  raw: string; // as written, e.g. "--from=builder"
}

export interface KeyValue {
  key: string;
  value: string; // still unexpanded; quotes kept as written (expansion removes them)
  hasEquals: boolean; // ARG name (no default) has hasEquals=false
}

export interface Instruction {
  keyword: string; // upper-case canonical: "FROM", "RUN", ...
  flags: Flag[];
  // Exec (JSON array) form vs shell form. For JSON form `args` is the decoded array.
  // For shell form of RUN/CMD/ENTRYPOINT/SHELL-using instructions, `args` is one
  // element: the rest of the line (continuations joined) as written.
  // For other instructions, `args` holds the whitespace-separated words as written.
  // Details (as BuildKit's parser): USER/WORKDIR/STOPSIGNAL/MAINTAINER: one element,
  // the rest of the line; ENV/LABEL: [key1, value1, key2, value2...] (use keyValues);
  // ARG: the words (use keyValues); HEALTHCHECK: [TYPE, ...command] where `json`
  // refers to the command part; ONBUILD: [rest of line] (use `onbuild`); FROM,
  // EXPOSE, COPY/ADD/VOLUME shell form: split on whitespace only (quotes not honoured).
  json: boolean;
  args: string[];
  keyValues?: KeyValue[]; // ENV, LABEL, ARG
  heredocs: Heredoc[];
  onbuild?: Instruction; // for ONBUILD: the wrapped instruction
  startLine: number; // 1-based, inclusive
  endLine: number;
  original: string; // the instruction's text as written (continuations joined)
  comments: string[]; // comment lines directly above it (for docs/lints)
}

export interface ParsedDockerfile {
  directives: Directive[];
  escapeToken: '\\' | '`';
  instructions: Instruction[];
  // `rule`: the BuildKit build-check name when the warning is one (e.g. "FromAsCasing").
  warnings: { message: string; line: number; endLine?: number; rule?: string }[];
}
