// img rm (docker's rmi) [-f] IMAGE...: untag each name, then collect blobs no name (or cache) references.
// IMAGE is a name or an image ID (as `img inspect` and `docker images -q` print it).
import { NotFoundError, UsageError } from '../../util/errors';
import { escapeControls } from '../../util/escape';
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('rm')
      .alias('rmi')
      .description('Remove one or more images.')
      .usage('[OPTIONS] IMAGE [IMAGE...]')
      .argument('<image...>')
      .option('-f, --force', 'Force removal of the image (every name of an ID; a missing image is no error)')
      .action(async (names: string[], opts: { force?: boolean }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { removeImages } = require('../../state/remove') as typeof import('../../state/remove');
        const state = globals().state;
        const resolved = await resolveIds(state, names, Boolean(opts.force));
        const res = await removeImages(state, resolved.names, (line) => process.stdout.write(`${line}\n`));
        // Report a missing image by what the user typed.
        const missing = res.missing.map((n) => resolved.typed.get(n) ?? n);
        if (!missing.length) return;
        if (opts.force) {
          // docker rmi -f: a missing image is said on stderr, the exit stays 0.
          for (const n of missing) process.stderr.write(`Error: No such image: ${escapeControls(n, { oneLine: true })}\n`);
          return;
        }
        for (const n of missing.slice(0, -1)) process.stderr.write(`Error: No such image: ${escapeControls(n, { oneLine: true })}\n`);
        throw new NotFoundError(`No such image: ${missing.at(-1)}`, { hint: 'list local images with `img ls`' });
      }),
    [
      { flags: '--no-prune', why: 'img rm always removes the blobs no other image or cache uses', hint: 'drop --no-prune' },
      { flags: '--platform <strings>', why: 'img rm removes whole images, not one platform of an index', hint: 'drop --platform' },
    ],
  );

// Names that are image IDs (or their prefix, "fea588533fb4") become the names that
// point at that image, as docker rmi does; an ID with several names needs -f.
async function resolveIds(state: string, names: string[], force: boolean): Promise<{ names: string[]; typed: Map<string, string> }> {
  const { ImageStore } = require('../../images/store') as typeof import('../../images/store');
  const { inspectImages, isIdName } = require('../../images/inspect') as typeof import('../../images/inspect');
  const { normalizeName } = require('../../images/reference') as typeof import('../../images/reference');
  const images = new ImageStore(state);
  const out: string[] = [];
  const typed = new Map<string, string>();
  for (const input of names) {
    const idLike = /^(sha256:)?[a-f0-9]{4,64}$/.test(input);
    // A name wins ("beef" may be a repository), as in `img inspect`; so does the record of
    // an unnamed image, kept under its full ID.
    const named = idLike && (isIdName(input) ? await images.get(input) : !input.startsWith('sha256:') && (await images.get(normalizeName(input))));
    if (!idLike || named) {
      out.push(input);
      continue;
    }
    const obj = (await inspectImages(state, [input])).found[0];
    if (!obj) {
      out.push(input); // reported as missing by removeImages
      continue;
    }
    // Its tags; an image with none is kept under its ID.
    const tags = Array.isArray(obj.RepoTags) && obj.RepoTags.length ? (obj.RepoTags as string[]) : [String(obj.Id)];
    if (tags.length > 1 && !force) {
      throw new UsageError(`conflict: unable to delete ${input} (must be forced) - image is referenced in multiple repositories`, {
        hint: `use img rm -f ${input} to remove all its names (${tags.join(', ')}), or remove them by name`,
      });
    }
    for (const n of tags) {
      out.push(n);
      typed.set(n, input);
    }
  }
  return { names: out, typed };
}
