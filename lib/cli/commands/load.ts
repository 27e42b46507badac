// img load [-i FILE] [-q]: docker-archive and OCI-layout tars (a file or stdin) into the store.
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('load')
      .description('Load an image from a tar archive or STDIN.')
      .usage('[OPTIONS]')
      .option('-i, --input <string>', 'Read from tar archive file, instead of STDIN')
      .option('-q, --quiet', 'Suppress the load output')
      .action(async (opts: { input?: string; quiet?: boolean }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { loadImages } = require('../../import/load') as typeof import('../../import/load');
        const { escapeControls } = require('../../util/escape') as typeof import('../../util/escape');
        // Progress goes to a terminal only (stdout stays the "Loaded image" lines scripts read).
        const progress = !opts.quiet && process.stderr.isTTY ? (line: string) => process.stderr.write(`${escapeControls(line, { oneLine: true })}\n`) : undefined;
        const res = await loadImages(globals().state, { input: opts.input, progress });
        for (const line of res.lines) process.stdout.write(`${escapeControls(line, { oneLine: true })}\n`);
      }),
    [{ flags: '--platform <string>', why: 'img load loads every platform the archive holds', hint: 'drop --platform' }],
  );
