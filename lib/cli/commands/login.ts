// img login [SERVER]: verify the credentials against the registry (GET /v2/ through its
// auth challenge), then save them like docker does.
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program) =>
  program
    .command('login')
    .description('Log in to a Docker registry.')
    .usage('[OPTIONS] [SERVER]')
    .argument('[server]')
    .option('-u, --user <string>', 'Username')
    .option('-p, --password <string>', 'Password')
    .option('--password-stdin', 'Take the password from stdin')
    .action(async (server: string | undefined, opts: { user?: string; password?: string; passwordStdin?: boolean }) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { login } = require('../../registry/login') as typeof import('../../registry/login');
      await login(server ?? 'docker.io', opts);
    });
