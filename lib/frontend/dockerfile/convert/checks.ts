// The build checks that need what the converter knows: the global ARGs (FROM
// lines), a stage's environment (UndefinedVar), its SHELL, its WORKDIR, the
// .dockerignore — run where BuildKit's dockerfile2llb runs them, with its
// messages (lint.ts holds the rule table). Each check only adds a warning
// through the converter; none changes what is built.

import { parseReference } from '../../../images/reference';
import { parsePlatformOrNull } from '../../../images/platform';
import { editDistance } from '../errors';
import type { ArgCommand, FromCommand } from '../instructions/commands';
import { expandWord } from '../shell';
import type { Converter } from './converter';
import type { StageState } from './stage';
import type { Instruction } from '../ast';

// BuildKit's suggest.Search: the first option within edit distance 2 (the
// closest wins), none when the value is one of the options.
export function closest(value: string, options: Iterable<string>): string {
  let match = '';
  let best = 3;
  for (const o of options) {
    if (o === value) return '';
    const d = editDistance(value, o);
    if (d < best) {
      best = d;
      match = o;
    }
  }
  return match;
}

// Words like these in an ARG or ENV name suggest it carries a secret
// (a name made of "_"-separated words; "public" anywhere clears it).
const SECRET_WORD = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const PUBLIC_WORD = /(?:_|^)public(?:_|$)/i;

export function checkSecretName(cv: Converter, node: Instruction, instruction: 'ARG' | 'ENV', key: string): void {
  if (SECRET_WORD.test(key) && !PUBLIC_WORD.test(key)) {
    cv.check(node, 'SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${instruction} ${JSON.stringify(key)})`);
  }
}

// UndefinedVar: a variable an instruction expands that neither ENV nor ARG set
// in the stage (a declared ARG without a value counts as set).
export function checkUndefinedVars(cv: Converter, st: StageState, node: Instruction, unmatched: string[]): void {
  for (const name of unmatched) {
    if (st.declared.some((d) => d.key === name)) continue;
    const near = closest(name, st.env.keys());
    cv.check(node, 'UndefinedVar', `Usage of undefined variable '$${name}'${near ? ` (did you mean $${near}?)` : ''}`);
  }
}

export function checkWorkdir(cv: Converter, st: StageState, node: Instruction, path: string): void {
  // Only the first WORKDIR of the build's stage chain counts: fixing it fixes the rest.
  if (!st.workdirSet && !path.startsWith('/')) {
    cv.check(node, 'WorkdirRelativePath', `Relative workdir ${JSON.stringify(path)} can have unexpected results if the base image changes`);
  }
  st.workdirSet = true;
}

export function checkShellForm(cv: Converter, st: StageState, node: Instruction, keyword: 'CMD' | 'ENTRYPOINT'): void {
  // A stage with a SHELL (its own or its base's) chose its shell on purpose.
  if (!st.img.config?.Shell?.length) {
    cv.check(node, 'JSONArgsRecommended', `JSON arguments recommended for ${keyword} to prevent unintended behavior related to OS signals`);
  }
}

export function checkExposeSpec(cv: Converter, node: Instruction, spec: string): void {
  const parts = spec.split(':');
  if (parts.length > 1) {
    cv.check(node, 'ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${spec}'`);
  }
  const slash = parts[parts.length - 1].indexOf('/');
  const proto = slash < 0 ? '' : parts[parts.length - 1].slice(slash + 1);
  if (proto !== proto.toLowerCase()) {
    cv.check(node, 'ExposeProtoCasing', `Defined protocol '${spec}' in EXPOSE instruction should be lowercase`);
  }
}

// CopyIgnoredFile (experimental): a COPY or ADD source the .dockerignore excludes.
export function checkIgnoredSource(cv: Converter, node: Instruction, verb: 'Copy' | 'Add', src: string): void {
  const ignored = cv.ignoreMatcher();
  const rel = src.replace(/^(\.?\/)+/, '');
  if (ignored && rel !== '' && rel !== '.' && ignored.matches(rel)) {
    cv.check(node, 'CopyIgnoredFile', `Attempting to ${verb} file ${JSON.stringify(src)} that is excluded by .dockerignore`);
  }
}

// The FROM lines of every stage against the global ARGs: names no ARG
// declares, defaults that make no image name, constant --platform values and
// a redundant $TARGETPLATFORM.
export function checkFromLines(cv: Converter, stages: { name: string; from: FromCommand }[], metaArgs: ArgCommand[], globalEnv: ReadonlyMap<string, string>): void {
  const declared = new Set<string>([...globalEnv.keys(), ...metaArgs.flatMap((c) => c.args.map((a) => a.key))]);
  const defaults = defaultMetaArgs(cv, metaArgs);
  for (const { name, from } of stages) {
    const node = from.node;
    reportUndeclared(cv, node, unmatchedIn(from.baseName, globalEnv, cv.esc), declared);
    if (defaults) {
      const base = tryExpand(from.baseName, defaults, cv.esc);
      if (base !== null && !validImageName(base)) {
        cv.check(node, 'InvalidDefaultArgInFrom', `Default value for ARG ${from.baseName} results in empty or invalid base image name`);
      }
    }
    if (from.platform === undefined) continue;
    const res = expandWithMatches(from.platform, globalEnv, cv.esc);
    if (!res) continue;
    reportUndeclared(cv, node, res.unmatched, declared);
    if (res.matched.length === 1 && res.unmatched.length === 0 && res.matched[0] === 'TARGETPLATFORM' && res.value === globalEnv.get('TARGETPLATFORM')) {
      cv.check(node, 'RedundantTargetPlatform', `Setting platform to predefined ${from.platform} in FROM is redundant as this is the default behavior`);
    }
    if (res.matched.length === 0 && res.unmatched.length === 0) {
      const p = parsePlatformOrNull(res.value);
      if (p && !name.includes(p.os) && !name.includes(p.architecture)) {
        cv.check(node, 'FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value ${JSON.stringify(res.value)}`);
      }
    }
  }
}

function reportUndeclared(cv: Converter, node: Instruction, unmatched: string[], declared: Set<string>): void {
  for (const arg of unmatched) {
    if (declared.has(arg)) continue;
    const near = closest(arg, declared);
    cv.check(node, 'UndefinedArgInFrom', `FROM argument '${arg}' is not declared${near ? ` (did you mean ${near}?)` : ''}`);
  }
}

// The global scope as it would be without any --build-arg: automatic ARGs and defaults.
function defaultMetaArgs(cv: Converter, metaArgs: ArgCommand[]): Map<string, string> | null {
  const env = new Map<string, string>();
  for (const [k, v] of cv.automaticArgs()) env.set(k, v);
  for (const cmd of metaArgs) {
    for (const arg of cmd.args) {
      if (arg.value === undefined) continue;
      const v = tryExpand(arg.value, env, cv.esc);
      if (v === null) return null; // the build reports this itself
      env.set(arg.key, v);
    }
  }
  return env;
}

function validImageName(name: string): boolean {
  if (name === '') return false;
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}

function expandWithMatches(word: string, env: ReadonlyMap<string, string>, esc: '\\' | '`'): { value: string; matched: string[]; unmatched: string[] } | null {
  try {
    return expandWord(word, env, { escapeToken: esc });
  } catch {
    return null; // the build reports a bad expansion itself, with its line
  }
}

function unmatchedIn(word: string, env: ReadonlyMap<string, string>, esc: '\\' | '`'): string[] {
  return expandWithMatches(word, env, esc)?.unmatched ?? [];
}

function tryExpand(word: string, env: ReadonlyMap<string, string>, esc: '\\' | '`'): string | null {
  return expandWithMatches(word, env, esc)?.value ?? null;
}
