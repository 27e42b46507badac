// Build checks: BuildKit's linter rules with their names, messages, URLs and
// descriptions (docs/frontend/dockerfile/docs/rules), and the `# check=`
// directive that skips them, turns them into an error or enables the
// experimental ones.
//
// The rules that need only the parsed file run here (lint(), on every
// validated parse); the ones that need a stage's state — its environment,
// SHELL, WORKDIR, the global ARGs — run in the converter as it dispatches
// (convert/checks.ts), as BuildKit runs them in dockerfile2llb. The parser
// reports NoEmptyContinuation itself (empty lines leave no trace in the AST).
// The directive applies once, in the converter, to all of them together.

import type { Instruction } from './ast';
import { parseCheckDirective } from './directives';
import { DockerfileError } from './errors';

export interface LintWarning {
  rule: string;
  message: string;
  line: number; // first line of the instruction
  endLine?: number;
}

export interface RuleInfo {
  description: string;
  url: string;
  experimental?: boolean; // runs only when `# check=experimental=…` names it (or all)
}

const URL = 'https://docs.docker.com/go/dockerfile/rule/';

export const RULES: Record<string, RuleInfo> = {
  StageNameCasing: { description: 'Stage names should be lowercase', url: `${URL}stage-name-casing/` },
  FromAsCasing: { description: "The 'as' keyword should match the case of the 'from' keyword", url: `${URL}from-as-casing/` },
  NoEmptyContinuation: { description: 'Empty continuation lines will become errors in a future release', url: `${URL}no-empty-continuation/` },
  ConsistentInstructionCasing: {
    description: 'All commands within the Dockerfile should use the same casing (either upper or lower)',
    url: `${URL}consistent-instruction-casing/`,
  },
  DuplicateStageName: { description: 'Stage names should be unique', url: `${URL}duplicate-stage-name/` },
  ReservedStageName: { description: 'Reserved words should not be used as stage names', url: `${URL}reserved-stage-name/` },
  JSONArgsRecommended: {
    description: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
    url: `${URL}json-args-recommended/`,
  },
  MaintainerDeprecated: {
    description: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
    url: `${URL}maintainer-deprecated/`,
  },
  UndefinedArgInFrom: { description: 'FROM command must use declared ARGs', url: `${URL}undefined-arg-in-from/` },
  WorkdirRelativePath: {
    description: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes',
    url: `${URL}workdir-relative-path/`,
  },
  UndefinedVar: { description: 'Variables should be defined before their use', url: `${URL}undefined-var/` },
  MultipleInstructionsDisallowed: {
    description: 'Multiple instructions of the same type should not be used in the same stage',
    url: `${URL}multiple-instructions-disallowed/`,
  },
  LegacyKeyValueFormat: { description: 'Legacy key/value format with whitespace separator should not be used', url: `${URL}legacy-key-value-format/` },
  RedundantTargetPlatform: {
    description: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
    url: `${URL}redundant-target-platform/`,
  },
  SecretsUsedInArgOrEnv: { description: 'Sensitive data should not be used in the ARG or ENV commands', url: `${URL}secrets-used-in-arg-or-env/` },
  InvalidDefaultArgInFrom: {
    description: 'Default value for global ARG results in an empty or invalid base image name',
    url: `${URL}invalid-default-arg-in-from/`,
  },
  FromPlatformFlagConstDisallowed: { description: 'FROM --platform flag should not use a constant value', url: `${URL}from-platform-flag-const-disallowed/` },
  CopyIgnoredFile: { description: 'Attempting to Copy file that is excluded by .dockerignore', url: `${URL}copy-ignored-file/`, experimental: true },
  InvalidDefinitionDescription: {
    description:
      'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
    url: `${URL}invalid-definition-description/`,
    experimental: true,
  },
  ExposeProtoCasing: { description: 'Protocol in EXPOSE instruction should be lowercase', url: `${URL}expose-proto-casing/` },
  ExposeInvalidFormat: {
    description: 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release',
    url: `${URL}expose-invalid-format/`,
  },
};

// BuildKit's one-line form of a check: "Rule: message (line N)".
export function lintShort(w: { rule?: string; message: string; line?: number }): string {
  if (!w.rule) return w.message;
  return w.line ? `${w.rule}: ${w.message} (line ${w.line})` : `${w.rule}: ${w.message}`;
}

const WHITESPACE = /[\t\v\f\r ]+/;

// The keyword as written (its case is what the casing rules check).
function written(ins: Instruction): string {
  return ins.original.trim().split(WHITESPACE)[0];
}

function selfConsistent(s: string): boolean {
  return s === s.toLowerCase() || s === s.toUpperCase();
}

const RESERVED_STAGE_NAMES = new Set(['context', 'scratch']);
const MULTIPLE_DISALLOWED = new Set(['CMD', 'ENTRYPOINT', 'HEALTHCHECK']);

// The warnings of the rules that need only the file, in file order.
export function lint(instructions: Instruction[]): LintWarning[] {
  const out: LintWarning[] = [];
  const at = (ins: Instruction, rule: string, message: string): void => {
    out.push({ rule, message, line: ins.startLine, endLine: ins.endLine });
  };
  // ConsistentInstructionCasing: every keyword in the majority's case. As
  // BuildKit's validateCommandCasing, only stages count: the ARGs before the
  // first FROM neither vote nor get flagged; a tie goes to uppercase.
  const first = instructions.findIndex((ins) => ins.keyword === 'FROM');
  const inStages = (i: number): boolean => first >= 0 && i >= first;
  let upper = 0;
  let lower = 0;
  for (const [i, ins] of instructions.entries()) {
    if (!inStages(i)) continue;
    const w = written(ins);
    if (w === w.toLowerCase()) lower++;
    else if (w === w.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  // MultipleInstructionsDisallowed: of several CMD/ENTRYPOINT/HEALTHCHECK in a
  // stage only the last counts; each earlier one is reported.
  let lastOf = new Map<string, Instruction>();
  const stageNames = new Set<string>();
  for (const [i, ins] of instructions.entries()) {
    const w = written(ins);
    if (ins.keyword === 'FROM') {
      lastOf = new Map();
      checkFrom(ins, w, stageNames, at);
    }
    if (ins.keyword === 'MAINTAINER') at(ins, 'MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label');
    if ((ins.keyword === 'ENV' || ins.keyword === 'LABEL') && ins.keyValues?.some((p) => !p.hasEquals)) {
      at(ins, 'LegacyKeyValueFormat', `"${ins.keyword} key=value" should be used instead of legacy "${ins.keyword} key value" format`);
    }
    if (ins.keyword === 'ARG' && ins.keyValues?.length) {
      checkDescription(ins, 'ARG', ins.keyValues.map((kv) => kv.key), at);
    }
    if (inStages(i)) {
      const want = majorityLower ? w.toLowerCase() : w.toUpperCase();
      if (w !== want) at(ins, 'ConsistentInstructionCasing', `Command '${w}' should match the case of the command majority (${majorityLower ? 'lowercase' : 'uppercase'})`);
    }
    if (MULTIPLE_DISALLOWED.has(ins.keyword)) {
      const prev = lastOf.get(ins.keyword);
      if (prev) at(prev, 'MultipleInstructionsDisallowed', `Multiple ${ins.keyword} instructions should not be used in the same stage because only the last one will be used`);
      lastOf.set(ins.keyword, ins);
    }
  }
  return out;
}

// FROM base [AS name]: the AS keyword's case, the stage name's case, reserved
// and repeated names (BuildKit's parseFrom and validateStageNames).
function checkFrom(ins: Instruction, from: string, seen: Set<string>, at: (ins: Instruction, rule: string, message: string) => void): void {
  if (ins.args.length !== 3) return;
  const [, as, name] = ins.args;
  // A FROM of mixed case is ConsistentInstructionCasing's business, not this rule's.
  if (selfConsistent(from)) {
    const want = from === from.toLowerCase() ? as.toLowerCase() : as.toUpperCase();
    if (as !== want) at(ins, 'FromAsCasing', `'${as}' and '${from}' keywords' casing do not match`);
  }
  if (name !== name.toLowerCase()) at(ins, 'StageNameCasing', `Stage name '${name}' should be lowercase`);
  const lower = name.toLowerCase();
  if (RESERVED_STAGE_NAMES.has(lower)) at(ins, 'ReservedStageName', `Stage name should not use the same name as reserved stage "${lower}"`);
  if (seen.has(lower)) at(ins, 'DuplicateStageName', `Duplicate stage name "${lower}", stage names should be unique`);
  seen.add(lower);
  checkDescription(ins, 'FROM', [lower], at);
}

// InvalidDefinitionDescription (experimental): a comment right above a named
// stage or an ARG describes it when it starts with the name.
function checkDescription(ins: Instruction, keyword: string, keys: string[], at: (ins: Instruction, rule: string, message: string) => void): void {
  const last = ins.comments.at(-1);
  if (last === undefined || keys.length === 0) return;
  if (keys.includes(last.split(' ')[0])) return;
  const example = keys.length > 1 ? '<arg_key>' : keys[0];
  at(ins, 'InvalidDefinitionDescription', `Comment for ${keyword} should follow the format: \`# ${example} <description>\``);
}

// What `# check=` asks for.
export interface CheckPolicy {
  skipAll: boolean;
  skip: Set<string>;
  error: boolean;
  experimental: Set<string>; // enabled experimental rules ('all' for every one)
}

export function checkPolicy(directive: string | undefined): CheckPolicy {
  const cfg = parseCheckDirective(directive ?? '');
  return {
    skipAll: cfg.skip.includes('all'),
    skip: new Set(cfg.skip),
    error: cfg.error,
    experimental: new Set(cfg.experimental),
  };
}

// The warnings the policy keeps: skipped rules and experimental ones not
// enabled are dropped; warnings that are not build checks stay.
export function applyCheckPolicy<W extends { rule?: string }>(warnings: W[], policy: CheckPolicy): W[] {
  return warnings.filter((w) => {
    if (!w.rule) return true;
    if (policy.skipAll || policy.skip.has(w.rule)) return false;
    const info = RULES[w.rule];
    return !info?.experimental || policy.experimental.has('all') || policy.experimental.has(w.rule);
  });
}

// `error=true`: kept build checks fail the build, as BuildKit's lint.Error().
// The error carries the warnings, so the build can show them first.
export function checkError(warnings: { rule?: string; message: string; line?: number }[], policy: CheckPolicy, file: string): DockerfileError | null {
  if (!policy.error) return null;
  const found = warnings.filter((w) => w.rule);
  if (!found.length) return null;
  const rules = [...new Set(found.map((w) => w.rule!))];
  return new DockerfileError(`lint violation found for rules: ${rules.join(', ')}`, {
    file,
    line: found[0].line ?? 1,
    hint: `fix what the warnings above say, or skip the rules with "# check=skip=${rules.join(',')}"`,
  });
}
