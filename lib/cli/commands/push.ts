// img push NAME[:TAG]: upload what the registry lacks, then the manifests.
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('push')
    .description('Push an image or a repository to a registry.')
    .usage('[OPTIONS] NAME[:TAG]')
    .argument('<name>')
    .option('--insecure-registry', 'Push to insecure registry')
    .action(async (name: string, opts: { insecureRegistry?: boolean }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { pushImage, pushName } = require('../../registry/push') as typeof import('../../registry/push');
      const { familiarName } = require('../../images/reference') as typeof import('../../images/reference');
      const { closeAgents } = require('../../registry/transport') as typeof import('../../registry/transport');
      const { LayerProgress } = require('../../registry/progress') as typeof import('../../registry/progress');
      const display = familiarName(pushName(name).ref);
      process.stdout.write(`Pushing ${display}...\n`);
      const progress = new LayerProgress(process.stdout);
      try {
        const res = await pushImage(name, { stateDir: globals().state, insecure: opts.insecureRegistry, onEvent: (ev) => progress.pushEvent(ev) });
        progress.finish();
        process.stdout.write(`${res.reference.tag}: digest: ${res.digest} size: ${res.manifestSize}\n`);
        process.stdout.write(`Successfully pushed ${display}\n`);
      } finally {
        progress.finish();
        await closeAgents();
      }
    });
