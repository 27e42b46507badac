// img logout [SERVER]: forget the credentials docker's config.json (or its helper) holds.
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program) =>
  program
    .command('logout')
    .description('Log out from a Docker registry.')
    .usage('[SERVER]')
    .argument('[server]')
    .action(async (server: string | undefined) => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { configKeyForServer, eraseCredentials } = require('../../registry/credentials') as typeof import('../../registry/credentials');
      const key = configKeyForServer(server ?? 'docker.io');
      if (await eraseCredentials(key)) process.stdout.write(`Removing login credentials for ${key}\n`);
      else process.stdout.write(`Not logged in to ${key}\n`);
    });
