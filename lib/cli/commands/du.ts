// img du [-f FILTER]: snapshots (every backend) and content blobs with their
// size and whether prune would reclaim them; "*" marks ids in use by a
// running img process. Layout as img's (tabwriter).
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('du')
    .description('Show image disk usage.')
    .usage('[OPTIONS]')
    .option('-f, --filter <list>', 'Filter output based on conditions provided', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(async (opts: { filter: string[] }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { enterUserNamespace } = require('../../exec/userns') as typeof import('../../exec/userns');
      const du = require('../../state/du') as typeof import('../../state/du');
      const { bytesSize, tabwrite } = require('../../util/units') as typeof import('../../util/units');
      const keep = du.parseUsageFilters(opts.filter); // bad filters fail before the namespace
      await enterUserNamespace({ reason: 'du' });
      const rows = (await du.diskUsage(globals().state)).filter(keep);
      process.stdout.write(du.formatUsage(rows, bytesSize, tabwrite, { truncate: false, summary: 'Reclaimable' }));
    });
