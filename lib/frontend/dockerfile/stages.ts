// Splitting a Dockerfile's commands into the global ARG preamble and stages
// (BuildKit's instructions.Parse), and finding the stage --target names.

import { DockerfileError, suggest } from './errors';
import type { ArgCommand, Command, FromCommand, StageCommand } from './instructions/commands';

export interface Stage {
  index: number;
  name: string; // lower-cased "AS" name, "" when unnamed
  from: FromCommand;
  commands: StageCommand[];
}

export interface SplitDockerfile {
  metaArgs: ArgCommand[]; // ARGs before the first FROM
  stages: Stage[];
}

export function splitStages(commands: Command[], file: string): SplitDockerfile {
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  const byName = new Map<string, Stage>();
  for (const cmd of commands) {
    const node = cmd.node;
    if (cmd.keyword === 'FROM') {
      const name = cmd.stageName;
      if (name && byName.has(name)) {
        throw new DockerfileError(`duplicate stage name "${name}"`, {
          file,
          line: node.startLine,
          snippet: node.original,
          hint: `stage "${name}" is already defined on line ${byName.get(name)!.from.node.startLine}; rename one of them`,
        });
      }
      const st: Stage = { index: stages.length, name, from: cmd, commands: [] };
      stages.push(st);
      if (name) byName.set(name, st);
    } else if (stages.length === 0) {
      if (cmd.keyword !== 'ARG') {
        throw new DockerfileError(`no build stage in current context: ${cmd.keyword} must come after FROM`, {
          file,
          line: node.startLine,
          snippet: node.original,
          hint: 'only ARG may come before the first FROM',
        });
      }
      metaArgs.push(cmd);
    } else {
      stages[stages.length - 1].commands.push(cmd);
    }
  }
  if (stages.length === 0) {
    // BuildKit's words (toDispatchState), which scripts and its tests match on.
    throw new DockerfileError('dockerfile contains no stages to build', {
      file,
      line: commands.length ? commands[commands.length - 1].node.endLine : 1,
      hint: 'start a build stage with FROM <image> (or FROM scratch)',
    });
  }
  return { metaArgs, stages };
}

function findStageByName(stages: Stage[], name: string): Stage | undefined {
  const n = name.toLowerCase();
  return stages.find((s) => s.name !== '' && s.name === n);
}

// The stage --target names, or an error listing the stages (with a did-you-mean).
export function findTarget(stages: Stage[], target: string | undefined, file: string): Stage {
  if (!target) return stages[stages.length - 1];
  const st = findStageByName(stages, target);
  if (st) return st;
  const names = stages.filter((s) => s.name).map((s) => s.name);
  const guess = suggest(target, names);
  const list = names.length ? `available stages: ${names.join(', ')}` : 'the Dockerfile has no named stages';
  throw new DockerfileError(`target stage "${target}" could not be found${guess ? ` (did you mean "${guess}"?)` : ''}`, {
    file,
    line: stages[stages.length - 1].from.node.startLine,
    hint: guess ? `use --target ${guess}; ${list}` : `pass one of the stage names to --target; ${list}`,
  });
}
