// Help text in img's (cobra's) layout:
//   NAME -  SUMMARY
//
//   Usage: img NAME [OPTIONS] ARGS
//
//   Flags:
//     -h, --help   help for NAME
//   Global Flags:
//     ...
import type { Command, Help, Option } from 'commander';

// Option flags are declared like `-s, --state <string>`; cobra prints `-s, --state string`.
function flagColumn(opt: Option): string {
  const flags = opt.flags.replace(/\s*[<[]([^>\]]+)[>\]]/, ' $1');
  return opt.short ? flags : `    ${flags}`;
}

function optionRows(options: readonly Option[]): [string, string][] {
  return options
    .filter((o) => !o.hidden)
    .map((o) => {
      let desc = o.description;
      const def = o.defaultValue;
      if (def !== undefined && def !== false && !(Array.isArray(def) && def.length === 0)) {
        desc += ` (default ${JSON.stringify(def)})`;
      }
      return [flagColumn(o), desc];
    });
}

function table(rows: [string, string][]): string {
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}   ${d}`.trimEnd()).join('\n');
}

export function formatHelp(cmd: Command, _helper: Help): string {
  const root = rootOf(cmd);
  const isRoot = root === cmd;
  const out: string[] = [];
  const name = isRoot ? 'img' : cmd.name();
  out.push(`${name} -  ${cmd.description()}`, '');
  const usage = isRoot ? 'img [OPTIONS] COMMAND [ARG...]' : `img ${cmd.name()} ${cmd.usage()}`;
  out.push(`Usage: ${usage.trimEnd()}`, '');
  // cobra's Aliases section (docker's names: rmi for rm, images for ls).
  if (!isRoot && cmd.aliases().length) out.push('Aliases:', `  ${[cmd.name(), ...cmd.aliases()].join(', ')}`, '');
  const own = optionRows(cmd.options);
  own.push(['-h, --help', `help for ${name}`]);
  // cobra sorts flags by long name, ignoring the short form in front.
  const longName = (f: string) => f.trim().replace(/^-.,\s*/, '');
  own.sort((a, b) => longName(a[0]).localeCompare(longName(b[0])));
  out.push('Flags:', table(own), '');
  if (isRoot) {
    const cmds = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const rows: [string, string][] = cmds.map((c) => [c.name(), c.description()]);
    rows.push(['help', 'Help about any command']);
    rows.sort((a, b) => a[0].localeCompare(b[0]));
    // cobra pads command names to at least 11 columns.
    const pad = Math.max(11, ...rows.map(([n]) => n.length));
    const cmdTable = rows.map(([n, d]) => `  ${n.padEnd(pad)} ${d}`).join('\n');
    out.push('Commands:', cmdTable, '', 'Use "img [command] --help" for more information about a command.', '');
  } else {
    const globals = optionRows(root.options.filter((o) => o.long !== '--version'));
    out.push('Global Flags:', table(globals), '');
  }
  return out.join('\n');
}

function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}
