// img inspect [-f FORMAT] IMAGE...: docker image inspect's JSON array, or a Go template per image.
import { NotFoundError } from '../../util/errors';
import { escapeControls } from '../../util/escape';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('inspect')
    .description('Display detailed information on one or more images.')
    .usage('[OPTIONS] IMAGE [IMAGE...]')
    .option('-f, --format <string>', 'Format output using a custom template: "json" (default) or a Go TEMPLATE')
    .argument('<image...>')
    .action(async (names: string[], opts: { format?: string }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { inspectImages, templateView } = require('../../images/inspect') as typeof import('../../images/inspect');
      const { Template } = require('../../util/template') as typeof import('../../util/template');
      const { goMarshalIndent } = require('../../util/gojson') as typeof import('../../util/gojson');
      // A bad template fails before any lookup, as docker's does.
      const template = opts.format && opts.format !== 'json' ? new Template(opts.format) : null;
      const { found, missing } = await inspectImages(globals().state, names);
      if (template) for (const obj of found) process.stdout.write(`${template.execute(templateView(obj))}\n`);
      else process.stdout.write(`${goMarshalIndent(found, '    ')}\n`);
      if (missing.length) {
        for (const n of missing.slice(0, -1)) process.stderr.write(`Error: No such image: ${escapeControls(n, { oneLine: true })}\n`);
        throw new NotFoundError(`No such image: ${missing.at(-1)}`, { hint: 'list local images with `img ls`' });
      }
    });
