// Splitting a parsed Dockerfile into the global ARG preamble and stages, stage
// naming rules, and lookups for FROM/--from/--target.

import type { Instruction, ParsedDockerfile } from './ast';
import { DockerfileError, suggest } from './errors';

export interface Stage {
  index: number;
  name: string; // lower-cased "AS" name, "" when unnamed
  baseName: string; // FROM argument as written (unexpanded)
  platformFlag?: string; // FROM --platform, unexpanded
  from: Instruction;
  commands: Instruction[];
}

export interface SplitDockerfile {
  metaArgs: Instruction[]; // ARGs before the first FROM
  stages: Stage[];
}

const STAGE_NAME = /^[a-z][a-z0-9\-_.]*$/;

export function splitStages(parsed: ParsedDockerfile, file: string): SplitDockerfile {
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const byName = new Map<string, Stage>();
  for (const ins of parsed.instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args;
      let name = '';
      if (words.length === 3 && words[1].toLowerCase() === 'as') name = words[2].toLowerCase();
      else if (words.length !== 1) {
        throw new DockerfileError('FROM requires either one or three arguments', {
          file,
          line: ins.startLine,
          snippet: ins.original,
          hint: 'write FROM <image> [AS <name>]',
        });
      }
      if (name && !STAGE_NAME.test(name)) {
        throw new DockerfileError(
          `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
          { file, line: ins.startLine, snippet: ins.original, hint: 'use letters, digits, "-", "_" and "." starting with a letter' },
        );
      }
      if (name && byName.has(name)) {
        throw new DockerfileError(`duplicate stage name "${name}"`, {
          file,
          line: ins.startLine,
          snippet: ins.original,
          hint: `stage "${name}" is already defined on line ${byName.get(name)!.from.startLine}; rename one of them`,
        });
      }
      for (const f of ins.flags) {
        if (f.name !== 'platform') {
          throw new DockerfileError(`unknown flag: --${f.name}`, { file, line: ins.startLine, snippet: ins.original, hint: 'FROM accepts only --platform' });
        }
      }
      const pf = ins.flags.find((f) => f.name === 'platform');
      const st: Stage = {
        index: stages.length,
        name,
        baseName: words[0],
        platformFlag: pf ? pf.value ?? '' : undefined,
        from: ins,
        commands: [],
      };
      stages.push(st);
      if (name) byName.set(name, st);
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') {
        throw new DockerfileError(`no build stage in current context: ${ins.keyword} must come after FROM`, {
          file,
          line: ins.startLine,
          snippet: ins.original,
          hint: 'only ARG may come before the first FROM',
        });
      }
      metaArgs.push(ins);
    } else {
      stages[stages.length - 1].commands.push(ins);
    }
  }
  if (stages.length === 0) {
    throw new DockerfileError('the Dockerfile has no FROM instruction', {
      file,
      line: parsed.instructions.length ? parsed.instructions[parsed.instructions.length - 1].endLine : 1,
      hint: 'start a build stage with FROM <image> (or FROM scratch)',
    });
  }
  return { metaArgs, stages };
}

export function findStageByName(stages: Stage[], name: string): Stage | undefined {
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
    line: stages[stages.length - 1].from.startLine,
    hint: guess ? `use --target ${guess}; ${list}` : `pass one of the stage names to --target; ${list}`,
  });
}

// Stage references in --from (COPY, RUN --mount) are a stage name, a stage
// index, or otherwise an image reference.
export type StageRef = { kind: 'stage'; stage: Stage } | { kind: 'other'; name: string };
