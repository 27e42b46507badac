// img push [-a] [-q] NAME[:TAG]: upload what the registry lacks, then the manifests.
import { NotFoundError, UsageError } from '../../util/errors';
import { contentTrustOption, refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('push')
      .description('Push an image or a repository to a registry.')
      .usage('[OPTIONS] NAME[:TAG]')
      .argument('<name>')
      .option('--insecure-registry', 'Push to insecure registry')
      .option('-a, --all-tags', 'Push all tags of an image to the repository')
      .option('-q, --quiet', 'Suppress verbose output (print only the pushed references)')
      .addOption(contentTrustOption('Skip image signing (always: img does not sign)', 'img does not sign images (Docker Content Trust)', 'drop --disable-content-trust=false'))
      .action(async (name: string, opts: { insecureRegistry?: boolean; allTags?: boolean; quiet?: boolean }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { pushImage, pushName } = require('../../registry/push') as typeof import('../../registry/push');
        const { familiarName, formatReference, parseReference } = require('../../images/reference') as typeof import('../../images/reference');
        const { closeAgents } = require('../../registry/transport') as typeof import('../../registry/transport');
        const { LayerProgress } = require('../../registry/progress') as typeof import('../../registry/progress');
        const state = globals().state;
        let names = [name];
        if (opts.allTags) names = await allTags(state, name);
        const say = (s: string) => {
          if (!opts.quiet) process.stdout.write(s);
        };
        try {
          for (const n of names) {
            const display = familiarName(pushName(n).ref);
            say(`Pushing ${display}...\n`);
            const progress = opts.quiet ? null : new LayerProgress(process.stdout);
            try {
              const res = await pushImage(n, { stateDir: state, insecure: opts.insecureRegistry, onEvent: (ev) => progress?.pushEvent(ev) });
              progress?.finish();
              say(`${res.reference.tag}: digest: ${res.digest} size: ${res.manifestSize}\n`);
              say(`Successfully pushed ${display}\n`);
            } finally {
              progress?.finish();
            }
          }
          // docker push -q: the reference pushed (with -a, the repository), the one line scripts read.
          if (opts.quiet) {
            const ref = parseReference(name);
            process.stdout.write(`${opts.allTags ? formatReference({ domain: ref.domain, path: ref.path }) : pushName(name).name}\n`);
          }
        } finally {
          await closeAgents();
        }
      }),
    [{ flags: '--platform <string>', why: 'img push pushes the image (or index) as stored', hint: 'drop --platform; to push one platform, build it alone: img build --platform P -t NAME .' }],
  );

// docker push -a: every stored tag of the repository NAME names, in name order.
async function allTags(state: string, name: string): Promise<string[]> {
  const { ImageStore } = require('../../images/store') as typeof import('../../images/store');
  const { parseReference } = require('../../images/reference') as typeof import('../../images/reference');
  const ref = parseReference(name);
  // parseReference fills in "latest": whether a tag was given is in the text.
  const nameOnly = !name.includes('@') && name.lastIndexOf(':') < name.lastIndexOf('/') + 1;
  if (!nameOnly) throw new UsageError("tag can't be used with --all-tags/-a", { hint: `use img push -a ${name.replace(/[:@][^/]*$/, '')}` });
  const tags: string[] = [];
  for (const r of await new ImageStore(state).list()) {
    try {
      const have = parseReference(r.name);
      if (have.domain === ref.domain && have.path === ref.path && have.tag && !have.digest) tags.push(r.name);
    } catch {
      // an unnamed image kept under its ID
    }
  }
  if (!tags.length) throw new NotFoundError(`An image does not exist locally with the tag: ${name}`, { hint: 'list local images with `img ls`' });
  return tags.sort();
}
