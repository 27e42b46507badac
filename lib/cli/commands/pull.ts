// img pull NAME[:TAG|@DIGEST]: resolve, download in parallel, verify, name the image.
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('pull')
    .description('Pull an image or a repository from a registry.')
    .usage('[OPTIONS] NAME[:TAG|@DIGEST]')
    .argument('<name>')
    .option('--insecure-registry', 'Pull from insecure registry')
    .option('--platform <string>', 'Set platform if server is multi-platform capable (e.g. linux/arm64)')
    .action(async (name: string, opts: { insecureRegistry?: boolean; platform?: string }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { pullImage, pullName } = require('../../registry/pull') as typeof import('../../registry/pull');
      const { parsePlatform } = require('../../images/platform') as typeof import('../../images/platform');
      const { parseReference } = require('../../images/reference') as typeof import('../../images/reference');
      const { bytesSize } = require('../../util/units') as typeof import('../../util/units');
      const { closeAgents } = require('../../registry/transport') as typeof import('../../registry/transport');
      const { LayerProgress } = require('../../registry/progress') as typeof import('../../registry/progress');
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const display = pullName(parseReference(name)).name;
      process.stdout.write(`Pulling ${display}...\n`);
      const progress = new LayerProgress(process.stdout);
      try {
        const res = await pullImage(name, {
          stateDir: globals().state,
          insecure: opts.insecureRegistry,
          platform,
          explicitPlatform: Boolean(platform),
          onEvent: (ev) => progress.pullEvent(ev),
        });
        progress.finish();
        if (res.upToDate) process.stdout.write(`Image is up to date for ${display}\n`);
        process.stdout.write(`Digest: ${res.target.digest}\n`);
        process.stdout.write(`Size: ${bytesSize(res.size)}\n`);
      } finally {
        progress.finish();
        await closeAgents();
      }
    });
