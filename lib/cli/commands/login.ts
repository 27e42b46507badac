// img login [SERVER]: verify the credentials against the registry (GET /v2/ through its
// auth challenge), then save them like docker does.
import { Option } from 'commander';
import { UsageError } from '../../util/errors';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program) =>
  program
    .command('login')
    .description('Log in to a Docker registry.')
    .usage('[OPTIONS] [SERVER]')
    .argument('[server]')
    .option('-u, --user <string>', 'Username')
    // docker's spelling of -u (img's is --user): scripts pass either.
    .addOption(new Option('--username <string>', 'Username').hideHelp())
    .option('-p, --password <string>', 'Password')
    .option('--password-stdin', 'Take the password from stdin')
    .action(async (server: string | undefined, opts: { user?: string; username?: string; password?: string; passwordStdin?: boolean }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { login } = require('../../registry/login') as typeof import('../../registry/login');
      if (opts.user !== undefined && opts.username !== undefined && opts.user !== opts.username) {
        throw new UsageError('--user and --username name different users', { hint: 'pass one of them' });
      }
      const { username, ...rest } = opts;
      await login(server ?? 'docker.io', { ...rest, user: opts.user ?? username });
    });
