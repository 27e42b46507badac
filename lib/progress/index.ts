// Progress output for builds: pick a renderer and connect it to a Progress.
export * from './events';
export { ProgressModel, errorSummary, failureBlock } from './model';
export { PlainRenderer } from './plain';
export { RawJsonRenderer } from './rawjson';
export { sourceContext, type SourceLines } from './source';
export { checkReport, warningSummary, type BuildWarning } from './warnings';
export { TtyRenderer } from './tty';

import { UsageError } from '../util/errors';
import type { Renderer } from './events';
import { PlainRenderer } from './plain';
import { RawJsonRenderer } from './rawjson';
import { TtyRenderer, type TtyOutput } from './tty';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'rawjson' | 'quiet';
export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'rawjson'] as const;

export function parseProgressMode(s: string): ProgressMode {
  if ((PROGRESS_MODES as readonly string[]).includes(s)) return s as ProgressMode;
  throw new UsageError(`invalid --progress value "${s}"`, { hint: `use one of: ${PROGRESS_MODES.join(', ')}` });
}

// auto: tty when the output is a terminal; --no-console forces plain.
export function createRenderer(
  mode: ProgressMode,
  out: TtyOutput & { isTTY?: boolean } = process.stderr,
  opts: { noConsole?: boolean } = {},
): Renderer {
  let m = mode;
  if (m === 'auto') m = opts.noConsole || !out.isTTY ? 'plain' : 'tty';
  switch (m) {
    case 'tty':
      return new TtyRenderer(out);
    case 'rawjson':
      return new RawJsonRenderer(out);
    case 'quiet':
      return { write() {}, async close() {} };
    default:
      return new PlainRenderer(out);
  }
}
