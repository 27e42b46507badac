// AST → typed commands (BuildKit's instructions.Parse): each instruction is
// checked once — keyword, flags against the table and the syntax version,
// argument counts, HEALTHCHECK options, ONBUILD triggers, the CSV of RUN
// --mount — and becomes a command whose fields the converter reads.
//
// parseDockerfile validates a file by building its commands; the converter
// takes the same list (`commandsOf` keeps it per parsed file), so nothing is
// parsed or checked twice. The order of the checks within an instruction
// follows BuildKit's (some count their arguments before reading flags, others
// after), so the first error reported is BuildKit's.

import type { HealthConfig } from '../../../images/types';
import type { Heredoc, Instruction, ParsedDockerfile } from '../ast';
import { syntaxOf, type SyntaxInfo } from '../directives';
import { DockerfileError, suggest } from '../errors';
import { parseHeredocWord } from '../heredoc';
import type {
  Command, CopyCommand, CopySource, HealthcheckCommand, NetworkMode, RunCommand, SecurityMode,
} from './commands';
import { parseMountFlag, type MountFlag } from './mounts';
import { ALL_FLAG_NAMES, INSTRUCTIONS, INSTRUCTION_FLAGS, flagAvailable, goDurationError, isKeyword, parseGoDuration } from './table';

export interface CommandOptions {
  file: string; // for messages
  syntax?: SyntaxInfo; // the `# syntax=` the file asked for: which flags exist
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
const WHITESPACE = /[\t\v\f\r ]+/;

// The commands of a parsed file, built on first use and kept with it.
const built = new WeakMap<ParsedDockerfile, Command[]>();

export function commandsOf(parsed: ParsedDockerfile, opts: CommandOptions): Command[] {
  let cmds = built.get(parsed);
  if (!cmds) {
    const syntax = opts.syntax ?? syntaxOf(parsed);
    cmds = parsed.instructions.map((node) => parseCommand(node, { ...opts, syntax }));
    built.set(parsed, cmds);
  }
  return cmds;
}

// One instruction → its command, or a DockerfileError naming the line.
export function parseCommand(node: Instruction, opts: CommandOptions): Command {
  return new CommandParser(node, opts).parse();
}

class CommandParser {
  constructor(
    private readonly node: Instruction,
    private readonly opts: CommandOptions,
  ) {}

  private fail(reason: string, hint?: string): never {
    const n = this.node;
    throw new DockerfileError(reason, { file: this.opts.file, line: n.startLine, endLine: n.endLine, snippet: n.original, hint });
  }

  parse(): Command {
    const node = this.node;
    const kw = node.keyword;
    if (!isKeyword(kw)) {
      const word = node.original.trim().split(WHITESPACE)[0];
      const s = suggest(word, INSTRUCTIONS); // answers in the word's case, as BuildKit
      this.fail(`unknown instruction: ${word}${s ? ` (did you mean ${s}?)` : ''}`, `instructions are ${INSTRUCTIONS.join(', ')}`);
    }
    const args = node.args;
    const n = args.length;
    const atLeastOne = (): void => {
      if (n === 0) this.fail(`${kw} requires at least one argument`);
    };
    const exactlyOne = (): void => {
      if (n !== 1) this.fail(`${kw} requires exactly one argument`);
    };
    switch (kw) {
      case 'FROM': {
        const asForm = n === 3 && args[1].toLowerCase() === 'as';
        if (n !== 1 && !asForm) {
          this.fail('FROM requires either one or three arguments', 'write FROM [--platform=<platform>] <image> [AS <name>]');
        }
        if (asForm && !STAGE_NAME.test(args[2].toLowerCase())) {
          this.fail(
            `invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`,
            'stage names start with a letter and contain only letters, digits, "-", "_" and "."',
          );
        }
        const flags = this.flags();
        return { keyword: 'FROM', node, baseName: args[0], stageName: asForm ? args[2].toLowerCase() : '', platform: flags.string('platform') };
      }
      case 'RUN':
        return this.run();
      case 'COPY':
      case 'ADD':
        return this.copy(kw);
      case 'CMD':
      case 'ENTRYPOINT':
        this.flags();
        return { keyword: kw, node, cmdLine: [...args], prependShell: !node.json };
      case 'SHELL':
        this.flags();
        atLeastOne();
        if (!node.json) this.fail('SHELL requires the arguments to be in JSON form', 'write SHELL ["executable", "parameters"]');
        return { keyword: 'SHELL', node, shell: [...args] };
      case 'ENV':
      case 'LABEL':
      case 'ARG': {
        // BuildKit's parseArg never reads flags: `ARG --x=1 NAME` is accepted and the flag ignored.
        if (kw !== 'ARG') this.flags();
        atLeastOne();
        const kvs = node.keyValues ?? [];
        for (const kv of kvs) {
          if (kv.key === '') this.fail(`${kw} names can not be blank`, `write ${kw} name=value`);
        }
        if (kw === 'ARG') return { keyword: 'ARG', node, args: kvs.map((kv) => (kv.hasEquals ? { key: kv.key, value: kv.value } : { key: kv.key })) };
        return { keyword: kw, node, pairs: kvs.map((kv) => ({ key: kv.key, value: kv.value })) };
      }
      case 'MAINTAINER':
        exactlyOne();
        this.flags();
        return { keyword: 'MAINTAINER', node, maintainer: args[0].trim() };
      case 'USER':
        exactlyOne();
        this.flags();
        return { keyword: 'USER', node, user: args[0] };
      case 'WORKDIR':
        exactlyOne();
        this.flags();
        return { keyword: 'WORKDIR', node, path: args[0] };
      case 'STOPSIGNAL':
        // No flag check: BuildKit's parseStopSignal ignores flags.
        exactlyOne();
        return { keyword: 'STOPSIGNAL', node, signal: args[0] };
      case 'EXPOSE':
        atLeastOne();
        this.flags();
        return { keyword: 'EXPOSE', node, ports: [...args].sort() };
      case 'VOLUME':
        atLeastOne();
        this.flags();
        // Trimmed here, checked again after expansion (BuildKit's parseVolume and dispatchVolume).
        if (args.some((a) => a.trim() === '')) this.fail('VOLUME specified can not be an empty string');
        return { keyword: 'VOLUME', node, volumes: args.map((a) => a.trim()) };
      case 'HEALTHCHECK':
        return this.healthcheck();
      case 'ONBUILD': {
        atLeastOne();
        this.flags();
        const t = node.onbuild;
        if (!t) this.fail('ONBUILD requires at least one argument');
        if (t.keyword === 'ONBUILD') this.fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (t.keyword === 'FROM' || t.keyword === 'MAINTAINER') this.fail(`${t.keyword} isn't allowed as an ONBUILD trigger`);
        // As BuildKit, the trigger itself is not checked here (unknown words,
        // flags, argument counts): it is stored as text and only parsed, and
        // rejected if bad, by a build that uses this image as its base.
        return { keyword: 'ONBUILD', node, expression: onbuildExpression(node) };
      }
    }
  }

  private run(): RunCommand {
    const node = this.node;
    const flags = this.flags();
    const network = flags.string('network') ?? 'default';
    if (!['default', 'none', 'host'].includes(network)) {
      this.fail(`invalid network mode ${JSON.stringify(network)}`, 'use --network=default, none or host');
    }
    const security = flags.string('security') ?? 'sandbox';
    if (!['sandbox', 'insecure'].includes(security)) {
      this.fail(`security ${JSON.stringify(security)} is not valid`, 'use --security=sandbox or insecure');
    }
    const mounts: MountFlag[] = [];
    for (const raw of flags.strings('mount')) {
      try {
        mounts.push(parseMountFlag(raw));
      } catch (e) {
        this.fail(`--mount=${raw}: ${(e as Error).message}`, 'see "RUN --mount" in the Dockerfile reference');
      }
    }
    return {
      keyword: 'RUN',
      node,
      cmdLine: [...node.args],
      prependShell: !node.json,
      heredocs: node.heredocs,
      mounts,
      network: network as NetworkMode,
      security: security as SecurityMode,
    };
  }

  private copy(kw: 'COPY' | 'ADD'): CopyCommand {
    const node = this.node;
    const words = node.args;
    if (words.length < 2) {
      this.fail(`${kw} requires at least two arguments, but only one was provided. Destination could not be determined`, `write ${kw} <src>... <dest>`);
    }
    const flags = this.flags();
    if (!node.json && heredocWord(words[words.length - 1])) {
      this.fail(`${kw} cannot accept a heredoc as a destination`, 'put the heredoc before the destination path');
    }
    // `<<EOF` words name this instruction's heredocs, each once, in order.
    const sources: CopySource[] = [];
    const unused = [...node.heredocs];
    for (const w of words.slice(0, -1)) {
      const h = node.json ? undefined : heredocWord(w);
      const doc = h ? unused.find((x) => x.name === h.name) : undefined;
      if (doc) {
        unused.splice(unused.indexOf(doc), 1);
        sources.push({ heredoc: doc });
      } else sources.push({ path: w });
    }
    const isAdd = kw === 'ADD';
    return {
      keyword: kw,
      node,
      sources,
      dest: words[words.length - 1],
      from: flags.string('from'),
      chown: flags.string('chown'),
      chmod: flags.string('chmod'),
      link: flags.bool('link'),
      parents: flags.bool('parents'),
      exclude: flags.strings('exclude'),
      checksum: isAdd ? flags.string('checksum') : undefined,
      keepGitDir: isAdd && flags.bool('keep-git-dir'),
      unpack: isAdd && flags.has('unpack') ? flags.bool('unpack') : undefined,
    };
  }

  private healthcheck(): HealthcheckCommand {
    const node = this.node;
    const args = node.args;
    if (args.length === 0) this.fail('HEALTHCHECK requires at least one argument', 'write HEALTHCHECK [OPTIONS] CMD <command>, or HEALTHCHECK NONE');
    const typ = args[0].toUpperCase();
    if (typ === 'NONE') {
      // As in BuildKit, the options of NONE are not read.
      if (args.length !== 1) this.fail('HEALTHCHECK NONE takes no arguments');
      return { keyword: 'HEALTHCHECK', node, health: { Test: ['NONE'] } };
    }
    const flags = this.flags();
    if (typ !== 'CMD') this.fail(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
    const rest = args.slice(1);
    if (rest.length === 0 || (!node.json && rest.join(' ').trim() === '')) this.fail('Missing command after HEALTHCHECK CMD');
    const health: HealthConfig = { Test: node.json ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')] };
    const durations = [
      ['interval', 'Interval'],
      ['timeout', 'Timeout'],
      ['start-period', 'StartPeriod'],
      ['start-interval', 'StartInterval'],
    ] as const;
    for (const [name, field] of durations) {
      const v = flags.string(name);
      if (v === undefined || v === '') continue;
      const ns = parseGoDuration(v);
      if (ns === undefined) this.fail(goDurationError(v)!, `--${name} takes a duration such as 30s, 1m30s`);
      // a negative duration is "less than 1ms" too (BuildKit's parseOptInterval)
      if (ns !== 0 && ns < 1e6) this.fail(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
      if (ns) health[field] = ns;
    }
    const r = flags.string('retries');
    if (r !== undefined && r !== '') {
      if (!/^[+-]?\d+$/.test(r)) this.fail(`strconv.ParseInt: parsing ${JSON.stringify(r)}: invalid syntax`, '--retries takes a whole number');
      const retries = Number(r);
      if (retries > 2 ** 31 - 1 || retries < -(2 ** 31)) {
        this.fail(`strconv.ParseInt: parsing ${JSON.stringify(r)}: value out of range`, '--retries takes a whole number');
      }
      if (retries < 0) this.fail(`--retries cannot be negative (${retries})`);
      if (retries) health.Retries = retries;
    }
    return { keyword: 'HEALTHCHECK', node, health };
  }

  // Checks every flag against the table (known, available in the file's
  // syntax, given once unless repeatable, boolean values) and returns them by
  // kind. Boolean values are normalized in the AST too ("TRUE" → "true").
  private flags(): ParsedFlags {
    const node = this.node;
    const kw = node.keyword;
    const specs = INSTRUCTION_FLAGS[kw] ?? {};
    const allowed = Object.keys(specs);
    const out = new ParsedFlags();
    if (node.flags.length === 0) return out;
    const syntax = this.opts.syntax;
    const accepts = allowed.length ? `${kw} accepts ${allowed.map((f) => '--' + f).join(', ')}` : `${kw} takes no flags`;
    for (const f of node.flags) {
      const spec = Object.prototype.hasOwnProperty.call(specs, f.name) ? specs[f.name] : undefined;
      if (!spec) {
        let why = '';
        if (ALL_FLAG_NAMES.includes(f.name)) why = ` (--${f.name} is not allowed on ${kw})`;
        else {
          const s = suggest(f.name, allowed, true);
          if (s) why = ` (did you mean ${s}?)`;
        }
        this.fail(`unknown flag: --${f.name}${why}`, accepts);
      }
      if (!flagAvailable(spec, syntax?.version, syntax?.labs ?? false)) {
        const labsOnly = spec.stable === undefined;
        this.fail(
          `unknown flag: --${f.name} (${kw} --${f.name} is not available in Dockerfile syntax ${syntax?.image ?? 'docker/dockerfile:1'}${labsOnly ? '; it is a labs feature' : ''})`,
          `use "# syntax=docker/dockerfile:${labsOnly ? '1-labs' : '1'}" as the first line of the Dockerfile`,
        );
      }
      if (out.has(f.name) && spec.kind !== 'strings') this.fail(`duplicate flag specified: --${f.name}`, `give --${f.name} once`);
      if (spec.kind === 'bool') {
        if (f.value === '') this.fail(`missing a value on flag: --${f.name}`, `write --${f.name} or --${f.name}=true|false`);
        const lower = f.value === null ? 'true' : f.value.toLowerCase();
        if (lower !== 'true' && lower !== 'false') {
          this.fail(`expecting boolean value for flag --${f.name}, not: ${f.value}`, `write --${f.name} or --${f.name}=true|false`);
        }
        if (f.value !== null) f.value = lower;
        out.add(f.name, lower);
      } else {
        if (f.value === null) this.fail(`missing a value on flag: --${f.name}`, `write --${f.name}=<value>`);
        out.add(f.name, f.value);
      }
    }
    return out;
  }
}

// An instruction's checked flags, by name.
class ParsedFlags {
  private readonly values = new Map<string, string[]>();

  add(name: string, value: string): void {
    const list = this.values.get(name);
    if (list) list.push(value);
    else this.values.set(name, [value]);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  string(name: string): string | undefined {
    return this.values.get(name)?.at(-1);
  }

  strings(name: string): string[] {
    return [...(this.values.get(name) ?? [])];
  }

  bool(name: string): boolean {
    return this.string(name) === 'true';
  }
}

// BuildKit's MustParseHeredoc: the heredoc a word introduces (a malformed one counts as none).
function heredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  try {
    return parseHeredocWord(word);
  } catch {
    return undefined;
  }
}

// An ONBUILD trigger as BuildKit stores it: the text after ONBUILD, with any
// heredoc bodies appended (so the trigger re-parses on its own).
function onbuildExpression(node: Instruction): string {
  let text = node.original.replace(/^\s*ONBUILD\s*/i, '');
  const heredocs = node.heredocs.length ? node.heredocs : node.onbuild?.heredocs ?? [];
  for (const h of heredocs) text += '\n' + h.content + h.name;
  return text;
}
