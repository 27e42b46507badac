// img save [--format docker|oci] [-o FILE] IMAGE...: a tar on stdout or in a file.
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('save')
      .description('Save an image to a tar archive (streamed to STDOUT by default).')
      .usage('[OPTIONS] IMAGE [IMAGE...]')
      .option('--format <string>', 'image output format (docker|oci)', 'docker')
      .option('-o, --output <string>', 'write to a file, instead of STDOUT')
      .argument('<image...>')
      .action(async (names: string[], opts: { format: string; output?: string }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { saveImages } = require('../../export/save') as typeof import('../../export/save');
        await saveImages(globals().state, names, { format: opts.format, output: opts.output });
      }),
    [{ flags: '--platform <string>', why: 'img save writes each image as stored (an index with every platform it holds)', hint: 'drop --platform; to save one platform, pull or build only that one (--platform) under its own name and save that' }],
  );
