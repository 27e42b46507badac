// Text from outside img (Dockerfile lines, file names, registry answers, step
// output) on its way to a terminal. Raw control characters there are commands to
// the terminal, not text: ESC starts sequences that move the cursor, retitle the
// window or rewrite the screen; NUL, BEL, DEL and C1 codes (U+0080–U+009F, which
// some terminals obey as 8-bit ESC sequences) hide or garble what is printed; bidi
// overrides make text read differently than it is. Every message and progress line
// built from such text passes through here, so what the user reads is what is there.
//
// Pure (no node: imports): error messages are built in the frontend too.

// C0 but tab and newline, DEL, C1, the bidi embedding/override/isolate controls.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// The same with tab and newline.
// eslint-disable-next-line no-control-regex
const UNSAFE_ONE_LINE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function visible(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

// Control characters written as escapes (`\x1b`, `\x00`, `\u009b`). Tabs and
// newlines stay unless `oneLine` (names and one-line messages that must not
// break into several lines).
export function escapeControls(text: string, opts: { oneLine?: boolean } = {}): string {
  const re = opts.oneLine ? UNSAFE_ONE_LINE : UNSAFE;
  re.lastIndex = 0;
  if (!re.test(text)) return text;
  re.lastIndex = 0;
  return text.replace(re, visible);
}

// ESC [ params final (CSI), ESC ] … BEL or ESC \ (OSC), and two-byte ESC x.
// eslint-disable-next-line no-control-regex
const SEQUENCE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]/g;

// One line of a program's output as a terminal would leave it: colour and cursor
// sequences dropped (a compiler's coloured errors read as text), what a carriage
// return overwrote gone (progress bars show their last state), and any other
// control character escaped. For the live view and the failure summary, where
// output shares the screen with img's own lines.
export function terminalLine(line: string): string {
  let s = line;
  if (s.includes('\x1b') || s.includes('\x9b')) s = s.replace(SEQUENCE, '');
  const cr = s.lastIndexOf('\r', s.length - 2);
  if (cr >= 0) s = s.slice(cr + 1);
  if (s.endsWith('\r')) s = s.slice(0, -1);
  return escapeControls(s, { oneLine: true });
}
