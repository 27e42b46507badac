// img unpack [-o DIR] IMAGE: pull the image when it is not stored, unpack its
// layers into (shared, reused) snapshots, copy the merged rootfs into DIR
// owned by the caller.
import { NotFoundError } from '../../util/errors';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('unpack')
    .description('Unpack an image to a rootfs directory.')
    .usage('[OPTIONS] IMAGE')
    .argument('<image>')
    .option('-o, --output <string>', 'Directory to unpack the rootfs to. (defaults to rootfs/ in the current working directory)')
    .option('--platform <string>', 'Unpack this platform of a multi-platform image (e.g. linux/arm64)')
    .action(async (image: string, opts: { output?: string; platform?: string }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const path = require('node:path') as typeof import('node:path');
      const { enterUserNamespace } = require('../../exec/userns') as typeof import('../../exec/userns');
      const rootfs = require('../../snapshot/rootfs') as typeof import('../../snapshot/rootfs');
      const { openSnapshotter } = require('../../snapshot/index') as typeof import('../../snapshot/index');
      const { debug } = require('../../util/log') as typeof import('../../util/log');
      const { parsePlatform } = require('../../images/platform') as typeof import('../../images/platform');
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const out = path.resolve(opts.output ?? 'rootfs');
      // Checked before entering the namespace too, so the error is immediate.
      await rootfs.checkOutputDir(out);
      await enterUserNamespace({ reason: 'unpack' });
      const { state, backend } = globals();
      let img = await rootfs.resolveStoredImage(state, image, platform);
      if (!img) {
        const { pullImage } = require('../../registry/pull') as typeof import('../../registry/pull');
        const { closeAgents } = require('../../registry/transport') as typeof import('../../registry/transport');
        process.stderr.write(`Pulling ${image}...\n`);
        try {
          await pullImage(image, { stateDir: state, platform, explicitPlatform: Boolean(platform) });
        } finally {
          await closeAgents();
        }
        img = await rootfs.resolveStoredImage(state, image, platform);
        if (!img) throw new NotFoundError(`pulled ${image} but it is not in the image store`, { hint: 'another img process removed it meanwhile; retry' });
      }
      const sn = await openSnapshotter(state, backend);
      const top = await rootfs.unpackResolved(state, sn, img, (ev) =>
        debug(`unpack ${ev.digest} (${ev.layer + 1}/${ev.total}): ${ev.status}`),
      );
      const mounted = await sn.mount(top);
      try {
        await rootfs.checkOutputDir(out);
        const existed = require('node:fs').existsSync(out) as boolean;
        try {
          const res = await rootfs.copyOut(mounted.rootfs, out);
          debug(`unpack: copied ${res.files} files, ${res.bytes} bytes to ${out}`);
        } catch (err) {
          // Do not leave a half-copied rootfs behind (the directory was empty or absent).
          await rootfs.removeOutput(out, existed);
          throw err;
        }
      } finally {
        await mounted.release();
      }
      process.stdout.write(`Successfully unpacked rootfs for ${image} to: ${out}\n`);
    });
