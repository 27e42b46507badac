// Build checks (BuildKit's linter rules, with their names and texts) that need
// only the parsed file, and the `# check=` directive that skips them or turns
// them into an error. parseDockerfile runs them on every validated file; a
// `--check` command can run them on their own.
//
// Not here: NoEmptyContinuation, which the parser reports while joining lines
// (empty continuation lines leave no trace in the AST).

import type { Instruction } from './ast';
import { parseCheckDirective } from './directives';
import { DockerfileError } from './errors';

export interface LintWarning {
  message: string;
  line: number;
  rule: string;
}

const WHITESPACE = /[\t\v\f\r ]+/;

// The keyword as written (its case is what ConsistentInstructionCasing checks).
function written(ins: Instruction): string {
  return ins.original.trim().split(WHITESPACE)[0];
}

// The warnings of every rule, in file order (several on one line keep the
// order below: syntax-level rules first, then casing, then stage rules).
export function lint(instructions: Instruction[]): LintWarning[] {
  const out: LintWarning[] = [];
  // ConsistentInstructionCasing: every keyword in the majority's case. Like
  // BuildKit, only stages count: the ARGs before the first FROM are not checked.
  const first = instructions.findIndex((ins) => ins.keyword === 'FROM');
  const inStages = (i: number): boolean => first >= 0 && i >= first;
  let upper = 0;
  let lower = 0;
  for (const [i, ins] of instructions.entries()) {
    if (!inStages(i)) continue;
    const w = written(ins);
    if (w === w.toUpperCase()) upper++;
    else if (w === w.toLowerCase()) lower++;
  }
  const majority = upper >= lower ? 'uppercase' : 'lowercase';
  // MultipleInstructionsDisallowed: CMD, ENTRYPOINT, HEALTHCHECK per stage.
  let stage = new Map<string, Instruction[]>();
  const flushStage = (): void => {
    for (const [kw, list] of stage) {
      for (const ins of list.slice(0, -1)) {
        out.push({
          message: `Multiple ${kw} instructions should not be used in the same stage because only the last one will be used`,
          line: ins.startLine,
          rule: 'MultipleInstructionsDisallowed',
        });
      }
    }
    stage = new Map();
  };
  for (const [i, ins] of instructions.entries()) {
    for (const kv of [ins, ins.onbuild]) {
      if (kv && (kv.keyword === 'ENV' || kv.keyword === 'LABEL') && kv.keyValues?.some((p) => !p.hasEquals)) {
        out.push({
          message: `"${kv.keyword} key=value" should be used instead of legacy "${kv.keyword} key value" format`,
          line: ins.startLine,
          rule: 'LegacyKeyValueFormat',
        });
      }
    }
    if (ins.keyword === 'FROM' && ins.args.length === 3) {
      const as = ins.args[1];
      const from = ins.original.trimStart().slice(0, 4);
      const fromUpper = from === 'FROM';
      if ((as === 'AS' && !fromUpper) || (as === 'as' && fromUpper)) {
        out.push({ message: `'${as}' and '${from}' keywords' casing do not match`, line: ins.startLine, rule: 'FromAsCasing' });
      }
    }
    if (ins.keyword === 'MAINTAINER') {
      out.push({ message: 'Maintainer instruction is deprecated in favor of using label', line: ins.startLine, rule: 'MaintainerDeprecated' });
    }
    const w = written(ins);
    const want = majority === 'uppercase' ? w.toUpperCase() : w.toLowerCase();
    if (inStages(i) && w !== want) {
      out.push({ message: `Command '${w}' should match the case of the command majority (${majority})`, line: ins.startLine, rule: 'ConsistentInstructionCasing' });
    }
    switch (ins.keyword) {
      case 'FROM': {
        flushStage();
        if (ins.args.length === 3) {
          const name = ins.args[2];
          if (name !== name.toLowerCase()) {
            out.push({ message: `Stage name '${name}' should be lowercase`, line: ins.startLine, rule: 'StageNameCasing' });
          }
          if (name.toLowerCase() === 'scratch' || name.toLowerCase() === 'context') {
            out.push({ message: `'${name.toLowerCase()}' is reserved and should not be used as a stage name`, line: ins.startLine, rule: 'ReservedStageName' });
          }
        }
        break;
      }
      case 'CMD':
      case 'ENTRYPOINT':
      case 'HEALTHCHECK': {
        if (ins.keyword !== 'HEALTHCHECK' && !ins.json) {
          out.push({
            message: `JSON arguments recommended for ${ins.keyword} to prevent unintended behavior related to OS signals`,
            line: ins.startLine,
            rule: 'JSONArgsRecommended',
          });
        }
        const list = stage.get(ins.keyword) ?? [];
        list.push(ins);
        stage.set(ins.keyword, list);
        break;
      }
    }
  }
  flushStage();
  return out;
}

// `# check=skip=Rule1,Rule2` drops those warnings (`all`: every one);
// `error=true` makes the remaining ones an error, as BuildKit does.
export function applyCheckDirective<W extends { message: string; line: number; rule?: string }>(warnings: W[], directive: string, file: string): W[] {
  const cfg = parseCheckDirective(directive);
  const skipAll = cfg.skip.some((r) => r.toLowerCase() === 'all');
  const skip = new Set(cfg.skip.map((r) => r.toLowerCase()));
  const kept = warnings.filter((w) => !w.rule || !(skipAll || skip.has(w.rule.toLowerCase())));
  if (cfg.error) {
    const found = kept.filter((w) => w.rule);
    if (found.length) {
      throw new DockerfileError(`lint violation found for rules: ${[...new Set(found.map((w) => w.rule))].join(', ')}`, {
        file,
        line: found[0].line,
        hint: `${found[0].message}; fix it, or skip the rule with "# check=skip=${found[0].rule}"`,
      });
    }
  }
  return kept;
}
