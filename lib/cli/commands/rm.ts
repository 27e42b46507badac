// img rm IMAGE...: untag each name, then collect blobs no name (or cache) references.
import { NotFoundError } from '../../util/errors';
import { escapeControls } from '../../util/escape';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('rm')
    .description('Remove one or more images.')
    .usage('[OPTIONS] IMAGE [IMAGE...]')
    .argument('<image...>')
    .action(async (names: string[]) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { removeImages } = require('../../state/remove') as typeof import('../../state/remove');
      const res = await removeImages(globals().state, names, (line) => process.stdout.write(`${line}\n`));
      if (res.missing.length) {
        for (const n of res.missing.slice(0, -1)) process.stderr.write(`Error: No such image: ${escapeControls(n, { oneLine: true })}\n`);
        throw new NotFoundError(`No such image: ${res.missing.at(-1)}`, { hint: 'list local images with `img ls`' });
      }
    });
