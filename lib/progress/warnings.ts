// Build warnings (build checks and the like) as docker buildx prints them:
// the summary after a build, and the report of `img build --check`.
//
//   1 warning found (use --debug to expand):
//    - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)
//
//   Check complete, 1 warning has been found!
//
//   WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/
//   JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
//   Dockerfile:3
//   --------------------
//   …
import { escapeControls } from '../util/escape';
import type { WarningEvent } from './events';
import { sourceContext } from './source';

export type BuildWarning = Omit<WarningEvent, 'type' | 'id' | 'time'> & {
  rule?: string; // the build check, when the warning is one
  message: string; // the check's own text (the report shows it under the rule)
};

const YELLOW = '\x1b[33m';
const RESET = '\x1b[0m';

// After a build: a count, then each warning's short line; `debug` adds its
// detail, URL and Dockerfile lines. Yellow on a terminal, as buildx.
export function warningSummary(warnings: BuildWarning[], opts: { debug?: boolean; color?: boolean } = {}): string {
  if (warnings.length === 0) return '';
  let head = warnings.length === 1 ? '1 warning found' : `${warnings.length} warnings found`;
  if (!opts.debug) head += ' (use --debug to expand)';
  head += ':\n';
  let out = '\n ' + (opts.color ? `${YELLOW}${head}${RESET}` : head);
  for (const w of warnings) {
    out += ` - ${escapeControls(w.short, { oneLine: true })}\n`;
    if (!opts.debug) continue;
    for (const d of w.detail) out += `${escapeControls(d)}\n`;
    if (w.url) out += `More info: ${w.url}\n`;
    if (w.source) out += escapeControls(sourceContext(w.source.file, w.source.text, w.source.ranges));
    out += '\n';
  }
  return out;
}

// `img build --check`: the build checks by line, each with its rule, URL, text
// and Dockerfile lines (BuildKit's lint printer), after a count.
export function checkReport(warnings: BuildWarning[]): string {
  const checks = warnings.filter((w) => w.rule).sort((a, b) => (a.source?.ranges[0]?.start ?? 0) - (b.source?.ranges[0]?.start ?? 0));
  if (checks.length === 0) return 'Check complete, no warnings found.\n';
  let out = `Check complete, ${checks.length === 1 ? '1 warning has been found!' : `${checks.length} warnings have been found!`}\n`;
  for (const w of checks) {
    out += `\nWARNING: ${w.rule}${w.url ? ` - ${w.url}` : ''}\n${w.message}\n`;
    if (w.source) out += sourceContext(w.source.file, w.source.text, w.source.ranges);
  }
  return escapeControls(out);
}
