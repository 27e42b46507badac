// img tag SOURCE TARGET: a second name for the same manifest/index.
import { NotFoundError, UsageError } from '../../util/errors';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('tag')
    .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.')
    .usage('SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
    .argument('<source>')
    .argument('<target>')
    .action(async (source: string, target: string) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { ImageStore } = require('../../images/store') as typeof import('../../images/store');
      const { normalizeName, parseReference } = require('../../images/reference') as typeof import('../../images/reference');
      const { withStoreLock } = require('../../state/lock') as typeof import('../../state/lock');
      const state = globals().state;
      const images = new ImageStore(state);
      const targetKey = normalizeName(target);
      if (parseReference(target).digest) {
        throw new UsageError(`refusing to create a tag with a digest reference: ${target}`, { hint: 'use NAME[:TAG] as the target' });
      }
      // Shared store lock: a concurrent `img rm` + GC cannot sweep the blobs between read and write.
      await withStoreLock(state, 'shared', async () => {
        const src = await images.get(normalizeName(source));
        if (!src) {
          throw new NotFoundError(`No such image: ${source}`, { hint: 'list local images with `img ls`; pull or build it first' });
        }
        await images.put(targetKey, src.target);
      });
      process.stdout.write(`Successfully tagged ${source} as ${target}\n`);
    });
