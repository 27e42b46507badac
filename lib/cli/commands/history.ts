// img history [--no-trunc] [-H=false] [--format F] [-q] IMAGE: docker history's table of an image's steps.
import { UsageError } from '../../util/errors';
import { refuse } from '../refuse';
import type { RegisterCommand } from './index';

// Go's strconv.ParseBool, as cobra reads -H=false / --human=0.
function parseBool(value: string | boolean): boolean {
  if (typeof value === 'boolean') return value;
  const v = value.replace(/^=/, '');
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new UsageError(`invalid argument "${value}" for "-H, --human" flag: strconv.ParseBool: parsing "${v}": invalid syntax`, {
    hint: 'use -H=true or -H=false',
  });
}

export const register: RegisterCommand = (program, globals) =>
  refuse(
    program
      .command('history')
      .description('Show the history of an image.')
      .usage('[OPTIONS] IMAGE')
      .option('--format <string>', 'Format output using a custom template: "table" (default), "table TEMPLATE", "json" or a Go TEMPLATE')
      .option('-H, --human [bool]', 'Print sizes and dates in human readable format', parseBool, true)
      .option('--no-trunc', "Don't truncate output")
      .option('-q, --quiet', 'Only show image IDs')
      .argument('<image>')
      .action(async (name: string, opts: { format?: string; human: boolean; trunc: boolean; quiet?: boolean }) => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { historyOf, historyView } = require('../../images/inspect') as typeof import('../../images/inspect');
        const { goJson, parseFormat } = require('../../util/template') as typeof import('../../util/template');
        const { tabwrite } = require('../../util/units') as typeof import('../../util/units');
        const { escapeControls } = require('../../util/escape') as typeof import('../../util/escape');
        // docker's default table; without -H its second column is CREATED AT.
        const table = `table {{.ID}}\t{{${opts.human ? '.CreatedSince' : '.CreatedAt'}}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}`;
        const format = opts.quiet ? '{{.ID}}' : !opts.format || opts.format === 'table' ? table : opts.format;
        const plan = format === 'json' ? null : parseFormat(format);
        const now = Date.now();
        const rows = (await historyOf(globals().state, name)).map((r) => historyView(r, { human: opts.human, trunc: opts.trunc, now }));
        const out = (s: string) => process.stdout.write(escapeControls(s));
        if (!plan) {
          for (const r of rows) out(`${goJson(r)}\n`);
          return;
        }
        const lines = rows.map((r) => plan.template.execute(r));
        if (!plan.table) {
          for (const l of lines) out(`${l}\n`);
          return;
        }
        const header = plan.template.execute(historyView.header);
        out(tabwrite([header, ...lines].map((l) => l.split('\t')), { minwidth: 10, tabwidth: 1, padding: 3, padchar: ' ' }));
      }),
    [{ flags: '--platform <string>', why: "img history shows the host's platform of a multi-platform image (else the only one stored)", hint: 'drop --platform; `img ls` lists the platforms stored and their digests' }],
  );
