// img doctor: what this environment allows img to do and what each missing
// piece costs, one row per check (lib/doctor). Exits 1 when a build cannot
// work here. An unprivileged caller runs the trials in the user namespace
// img enters: the same command re-run there, told by IMG_DOCTOR_TRIALS.
import { UsageError } from '../../util/errors';
import type { RegisterCommand } from './index';

export const register: RegisterCommand = (program, globals) =>
  program
    .command('doctor')
    .description('Check what this environment allows img to do.')
    .usage('[OPTIONS]')
    .option('--format <string>', 'output format (table|json)', 'table')
    .action(async (opts: { format: string }) => {
      if (opts.format !== 'table' && opts.format !== 'json') throw new UsageError(`unknown format "${opts.format}"`, { hint: 'use --format table or --format json' });
      const doctor = await import('../../doctor/index');
      const { inUserNamespace } = await import('../../exec/userns');
      const trialsFile = process.env[doctor.TRIALS_ENV];
      if (trialsFile && inUserNamespace()) {
        await doctor.writeTrials(trialsFile, globals().state);
        return;
      }
      const report = await doctor.doctor(globals().state);
      process.stdout.write(opts.format === 'json' ? doctor.formatJson(report) : doctor.formatTable(report));
      if (!report.verdict.builds) process.exitCode = 1;
    });
