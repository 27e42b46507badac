// The instruction table: keywords, the flags each accepts, and which Dockerfile
// syntax version (stable or labs channel) introduced a flag. Pure data, plus
// Go's duration syntax for the HEALTHCHECK options.

export const INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;
export type Keyword = (typeof INSTRUCTIONS)[number];

export function isKeyword(word: string): word is Keyword {
  return (INSTRUCTIONS as readonly string[]).includes(word);
}

// string: `--name=value` (once); strings: repeatable; bool: `--name` or `--name=true|false`.
export type FlagKind = 'string' | 'strings' | 'bool';

type Version = [number, number];
export interface FlagSpec {
  kind: FlagKind;
  // Syntax version from which the stable channel has it (undefined: labs only).
  stable?: Version;
  // Syntax version from which the labs channel has it (defaults to `stable`).
  labs?: Version;
}

const str = (stable?: Version, labs?: Version): FlagSpec => ({ kind: 'string', stable: stable ?? [1, 0], labs });
const strs = (stable?: Version, labs?: Version): FlagSpec => ({ kind: 'strings', stable: stable ?? [1, 0], labs });
const bool = (stable?: Version, labs?: Version): FlagSpec => ({ kind: 'bool', stable: stable ?? [1, 0], labs });

// Flags per instruction (Dockerfile reference, syntax 1.20). Version numbers are
// from the Dockerfile frontend release notes; features older than 1.2 count as 1.0.
export const INSTRUCTION_FLAGS: Readonly<Record<string, Readonly<Record<string, FlagSpec>>>> = {
  FROM: { platform: str() },
  RUN: {
    mount: strs([1, 2], [1, 0]),
    network: str(),
    security: str([1, 20], [1, 0]),
    device: { kind: 'strings', labs: [1, 14] },
  },
  COPY: {
    from: str(),
    chown: str(),
    chmod: str(),
    link: bool([1, 4]),
    parents: bool([1, 20], [1, 7]),
    exclude: strs([1, 19], [1, 7]),
  },
  ADD: {
    chown: str(),
    chmod: str(),
    link: bool([1, 4]),
    'keep-git-dir': bool(),
    checksum: str([1, 6]),
    exclude: strs([1, 19], [1, 7]),
    unpack: bool(),
    parents: bool([1, 20], [1, 7]),
  },
  HEALTHCHECK: {
    interval: str(),
    timeout: str(),
    'start-period': str(),
    'start-interval': str([1, 6]),
    retries: str(),
  },
};

// Every flag name any instruction accepts (to tell "typo" from "wrong instruction").
export const ALL_FLAG_NAMES: readonly string[] = [
  ...new Set(Object.values(INSTRUCTION_FLAGS).flatMap((f) => Object.keys(f))),
];

// Instructions that may carry heredocs (BuildKit: RUN, COPY, ADD).
export const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);

// Whether `spec` exists in the given syntax (version undefined = newest).
export function flagAvailable(spec: FlagSpec, version: [number, number, number] | undefined, labs: boolean): boolean {
  const atLeast = (v: Version | undefined): boolean =>
    v !== undefined && (version === undefined || version[0] > v[0] || (version[0] === v[0] && version[1] >= v[1]));
  if (atLeast(spec.stable)) return true;
  return labs && atLeast(spec.labs ?? spec.stable);
}

// ---- Go time.ParseDuration, for HEALTHCHECK --interval etc. ----

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

// Parses a Go duration ("1h30m", "1.5s", "-2m", "0") to nanoseconds; undefined when invalid.
export function parseGoDuration(s: string): number | undefined {
  return goDuration(s).ns;
}

// Go's error text for an invalid duration (time.ParseDuration), or undefined when valid.
export function goDurationError(s: string): string | undefined {
  return goDuration(s).error;
}

function goDuration(s: string): { ns?: number; error?: string } {
  const q = JSON.stringify(s);
  const invalid = { error: `time: invalid duration ${q}` };
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { ns: 0 };
  if (rest === '') return invalid;
  let total = 0;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    const whole = m[1];
    const frac = m[2];
    if (whole === '' && (frac === undefined || frac === '')) return invalid;
    rest = rest.slice(m[0].length);
    const u = /^[^\d.]+/.exec(rest);
    if (!u) return { error: `time: missing unit in duration ${q}` };
    const unit = UNIT_NS[u[0]];
    if (unit === undefined) return { error: `time: unknown unit ${JSON.stringify(u[0])} in duration ${q}` };
    rest = rest.slice(u[0].length);
    total += Number(whole || '0') * unit + (frac ? Number('0.' + frac) * unit : 0);
  }
  if (total > 2 ** 63) return invalid; // Go: overflow
  return { ns: sign * Math.round(total) };
}
