// img prune: remove every snapshot, build-cache record and blob no named image
// references (skipping what running img processes use), then print what went.
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('prune')
      .description('Prune and clean up the build cache.')
      .usage('[OPTIONS]')
      // docker builder prune's flags whose meaning img prune always has.
      .option('-a, --all', 'Remove all unused build cache (always: img prune removes everything no image uses)')
      .option('-f, --force', 'Do not prompt for confirmation (img prune never prompts)')
      .action(async () => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { enterUserNamespace } = require('../../exec/userns') as typeof import('../../exec/userns');
        const du = require('../../state/du') as typeof import('../../state/du');
        const { bytesSize, tabwrite } = require('../../util/units') as typeof import('../../util/units');
        const { debug } = require('../../util/log') as typeof import('../../util/log');
        await enterUserNamespace({ reason: 'prune' });
        const res = await du.prune(globals().state);
        for (const s of res.skipped) debug(`prune: ${s.id} is in use; kept`);
        process.stdout.write(du.formatUsage(res.removed, bytesSize, tabwrite, { truncate: true, summary: 'Reclaimed' }));
      }),
    [
      { flags: '--filter <filter>', why: 'img prune removes all unused build cache', hint: 'drop --filter; `img du -f` shows what a filter selects' },
      { flags: '--keep-storage <bytes>', why: 'img prune removes all unused build cache', hint: 'drop --keep-storage' },
      { flags: '--max-used-space <bytes>', why: 'img prune removes all unused build cache', hint: 'drop --max-used-space' },
    ],
  );
