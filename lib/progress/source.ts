// The source context BuildKit prints under a failed step: the file and the
// first failing line, then the failing lines with a few neighbours, numbered,
// `>>>` marking the failing ones:
//
//   Dockerfile:3
//   --------------------
//      2 |     ENV A=1
//      3 | >>> RUN make \
//      4 | >>>     install
//      5 |     CMD ["app"]
//   --------------------
//
// One failing line gets two neighbours on each side, several get one (near
// the file's start or end, the missing side is not made up below or above).
// Lines are the Dockerfile's untrusted bytes: control characters are escaped.
import { escapeControls } from '../util/escape';

export interface SourceLines {
  start: number; // 1-based, inclusive
  end: number;
}

const RULE = '--------------------';

export function sourceContext(file: string, text: string, ranges: SourceLines[]): string {
  if (ranges.length === 0) return '';
  const lines = text.split('\n');
  const first = Math.min(...ranges.map((r) => r.start));
  let end = Math.max(...ranges.map((r) => Math.max(r.start, r.end)));
  if (first < 1 || first > lines.length) return '';
  end = Math.min(end, lines.length);
  let start = first;
  // Budget: each round widens by a line on each side it can and costs one more.
  const budget = start === end ? 4 : 2;
  for (let spent = 0; spent < budget; spent++) {
    if (start > 1) {
      start--;
      spent++;
    }
    if (end < lines.length) {
      end++;
      spent++;
    }
  }
  const marked = (n: number) => ranges.some((r) => r.start <= n && n <= Math.max(r.start, r.end));
  const out = [`${file}:${first}`, RULE];
  for (let n = start; n <= end; n++) out.push(` ${String(n).padStart(3)} | ${marked(n) ? '>>>' : '   '} ${escapeControls(lines[n - 1])}`);
  out.push(RULE);
  return out.join('\n') + '\n';
}
