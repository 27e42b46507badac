// img inspect [-f FORMAT] IMAGE...: docker image inspect's JSON array, or a Go template per image.
import { NotFoundError, UnsupportedError } from '../../util/errors';
import { escapeControls } from '../../util/escape';
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('inspect')
      .description('Display detailed information on one or more images.')
      .usage('[OPTIONS] IMAGE [IMAGE...]')
      .option('-f, --format <string>', 'Format output using a custom template: "json" (default) or a Go TEMPLATE')
      .option('--type <string>', 'Only inspect objects of the given type (img has images only: "image")')
      // docker's --size sizes containers only; an image's Size is always there. (Its -s
      // is img's global -s/--state, which commander reads first.)
      .option('--size', 'Display total file sizes if the type is container (images always show Size)')
      .argument('<image...>')
      .action(async (names: string[], opts: { format?: string; type?: string }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        if (opts.type !== undefined && opts.type !== 'image') {
          throw new UnsupportedError(`img inspect --type ${opts.type}: img has no ${opts.type}s, only images`, { hint: 'use --type image, or drop --type' });
        }
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
      }),
    [
      {
        flags: '--platform <string>',
        why: "img inspect shows the host's platform of a multi-platform image (else the only one stored)",
        hint: 'drop --platform',
      },
    ],
  );
