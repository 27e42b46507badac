// img ls: NAME SIZE CREATED AT UPDATED AT DIGEST, tab-aligned like img's tabwriter;
// an index's stored platforms follow it as rows of their own (as `docker image ls --tree`).
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('ls')
    .description('List images and digests.')
    .usage('[OPTIONS]')
    .option('-f, --filter <list>', 'Filter output based on conditions provided', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(async (opts: { filter: string[] }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { listImages } = require('../../images/list') as typeof import('../../images/list');
      const { bytesSize, tabwrite, timeAgo } = require('../../util/units') as typeof import('../../util/units');
      const images = await listImages(globals().state, opts.filter);
      const now = Date.now();
      const rows = [['NAME', 'SIZE', 'CREATED AT', 'UPDATED AT', 'DIGEST']];
      for (const img of images) {
        rows.push([img.familiar, bytesSize(img.size), timeAgo(img.createdAt, now), timeAgo(img.updatedAt, now), img.target.digest]);
        const platforms = img.platforms ?? [];
        platforms.forEach((p, i) => rows.push([`${i === platforms.length - 1 ? '└─' : '├─'} ${p.platform}`, bytesSize(p.size), '', '', p.digest]));
      }
      process.stdout.write(tabwrite(rows));
    });
