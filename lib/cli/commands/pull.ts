// img pull NAME[:TAG|@DIGEST]: resolve, download in parallel, verify, name the image.
import { contentTrustOption, refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('pull')
      .description('Pull an image or a repository from a registry.')
      .usage('[OPTIONS] NAME[:TAG|@DIGEST]')
      .argument('<name>')
      .option('--insecure-registry', 'Pull from insecure registry')
      .option('--platform <string>', 'Set platform if server is multi-platform capable (e.g. linux/arm64)')
      .option('-q, --quiet', 'Suppress verbose output (print only the image reference)')
      .addOption(contentTrustOption('Skip image verification (always: img does not verify Docker Content Trust)', 'img does not verify Docker Content Trust signatures', 'pull by digest (NAME@sha256:…) to pin the content'))
      .action(async (name: string, opts: { insecureRegistry?: boolean; platform?: string; quiet?: boolean }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { pullImage, pullName } = require('../../registry/pull') as typeof import('../../registry/pull');
        const { parsePlatform } = require('../../images/platform') as typeof import('../../images/platform');
        const { parseReference } = require('../../images/reference') as typeof import('../../images/reference');
        const { bytesSize } = require('../../util/units') as typeof import('../../util/units');
        const { closeAgents } = require('../../registry/transport') as typeof import('../../registry/transport');
        const { LayerProgress } = require('../../registry/progress') as typeof import('../../registry/progress');
        const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
        const display = pullName(parseReference(name)).name;
        const say = (s: string) => {
          if (!opts.quiet) process.stdout.write(s);
        };
        say(`Pulling ${display}...\n`);
        const progress = opts.quiet ? null : new LayerProgress(process.stdout);
        try {
          const res = await pullImage(name, {
            stateDir: globals().state,
            insecure: opts.insecureRegistry,
            platform,
            explicitPlatform: Boolean(platform),
            onEvent: (ev) => progress?.pullEvent(ev),
          });
          progress?.finish();
          if (res.upToDate) say(`Image is up to date for ${display}\n`);
          say(`Digest: ${res.target.digest}\n`);
          say(`Size: ${bytesSize(res.size)}\n`);
          // docker pull -q: the full reference, the one line scripts read.
          if (opts.quiet) process.stdout.write(`${display}\n`);
        } finally {
          progress?.finish();
          await closeAgents();
        }
      }),
    [{ flags: '-a, --all-tags', why: 'img pull pulls one tag', hint: 'pull each tag you need: img pull NAME:TAG' }],
  );
