// The converter's driver and the state its instruction families share: the
// graph being built, the global ARG scope, what the build context must
// provide, and the helpers every family uses (errors at a line, expansion,
// progress text, file steps). The families are beside it: from.ts (stages and
// bases), run.ts, copy.ts (COPY/ADD), config.ts (the rest).

import type { ImageConfig, Platform } from '../../../images/types';
import type { BuildGraph, FileAction, LineRange, Ref, Vertex, VertexId } from '../../../graph/types';
import { GraphBuilder, prune, topoOrder } from '../../../graph/builder';
import { canonicalDefinition, digestOfCanonical } from '../../../graph/digest';
import type { Instruction, ParsedDockerfile } from '../ast';
import { proxyEnv, unusedBuildArgs, unusedBuildArgsWarning } from '../args';
import { ensureConfig } from '../config';
import { DockerfileError, ShellExpansionError, locateShellError } from '../errors';
import { applyCheckPolicy, checkError, checkPolicy } from '../lint';
import { checkFromLines, checkUndefinedVars } from './checks';
import type { StageCommand } from '../instructions/commands';
import { commandsOf } from '../instructions/parse';
import { contextPattern } from '../paths';
import { PatternMatcher } from '../dockerignore';
import { DEFAULT_PLATFORM, platformArgs } from '../../../images/platform';
import { expandWord, expandWords, lexWords } from '../shell';
import { type Stage, findTarget, splitStages } from '../stages';
import {
  dispatchArg, dispatchCmd, dispatchEntrypoint, dispatchEnv, dispatchExpose, dispatchHealthcheck, dispatchLabel,
  dispatchMaintainer, dispatchOnbuild, dispatchShell, dispatchStopSignal, dispatchUser, dispatchVolume, dispatchWorkdir,
} from './config';
import { dispatchCopy } from './copy';
import { BaseImages, checkStageRefs, dispatchStage, prefetch } from './from';
import { dispatchRun } from './run';
import type { StageState } from './stage';

export interface ConvertOptions {
  filename?: string; // for error messages, default 'Dockerfile'
  buildArgs?: Record<string, string>;
  target?: string;
  targetPlatform?: Platform;
  buildPlatform?: Platform;
  multiPlatform?: boolean; // one of several platforms' graphs: step names start with the stage's platform
  labels?: Record<string, string>; // --label overrides
  noCache?: boolean;
  // --no-cache-filter: the stages (names, any case) whose steps must run although cached.
  noCacheStages?: string[];
  dockerignore?: string[]; // patterns, already parsed
  namedContexts?: Record<string, NamedContext>; // --build-context
  // Resolve a base image's config (the caller does the registry work). null = unknown.
  resolveImageConfig: (ref: string, platform: Platform) => Promise<{ ref: string; digest: string; config: ImageConfig } | null>;
  sourceDateEpoch?: number;
  // Convert every stage, not only those the target needs: the build checks of
  // `img build --check` then cover the whole file, as BuildKit's lint.
  allStages?: boolean;
}

export type NamedContext = { kind: 'local' | 'image'; ref: string };

const CONTEXT_NAME = '[internal] load build context';
const INLINE_NAME = '[internal] preparing inline document';
// Stands in for the build context until every COPY source is known; the
// vertices that use it are re-hashed at the end (see finish()).
const CONTEXT_PLACEHOLDER = '\u0000context-placeholder';

function isoEpoch(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
}

export class Converter {
  readonly file: string;
  readonly esc: '\\' | '`';
  readonly b = new GraphBuilder();
  readonly targetPlatform: Platform;
  readonly buildPlatform: Platform;
  readonly buildArgs: Record<string, string>;
  readonly epoch?: string; // SOURCE_DATE_EPOCH as history/config `created`
  readonly proxy: string[]; // proxy build args, for RUN only
  readonly warnings: BuildGraph['warnings'] = [];
  readonly usedArgs = new Set<string>(); // build args some ARG declared
  readonly secrets = new Set<string>();
  readonly ssh = new Set<string>();
  readonly globalEnv = new Map<string, string>(); // for FROM lines and --platform
  readonly images: BaseImages;
  stages: Stage[] = [];
  singleStage = false;
  targetName = '';
  private readonly contextPaths = new Set<string>();
  private contextAll = false;
  private readonly done = new Map<Stage, Promise<StageState>>();

  constructor(
    private readonly parsed: ParsedDockerfile,
    readonly opts: ConvertOptions,
  ) {
    this.file = opts.filename ?? 'Dockerfile';
    this.esc = parsed.escapeToken ?? '\\';
    this.targetPlatform = opts.targetPlatform ?? DEFAULT_PLATFORM;
    this.buildPlatform = opts.buildPlatform ?? this.targetPlatform;
    this.buildArgs = opts.buildArgs ?? {};
    // --build-arg SOURCE_DATE_EPOCH works like the option, as in BuildKit.
    const argEpoch = this.buildArgs.SOURCE_DATE_EPOCH;
    const epoch = opts.sourceDateEpoch ?? (argEpoch !== undefined && /^[0-9]+$/.test(argEpoch) ? Number(argEpoch) : undefined);
    if (epoch !== undefined) this.epoch = isoEpoch(epoch);
    this.proxy = proxyEnv(opts.buildArgs);
    this.images = new BaseImages(opts.resolveImageConfig);
  }

  // ---- errors, expansion, progress text ----

  err(node: Instruction, reason: string, hint?: string): DockerfileError {
    return new DockerfileError(reason, { file: this.file, line: node.startLine, endLine: node.endLine, snippet: node.original, hint });
  }

  private located<T>(node: Instruction, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof ShellExpansionError) {
        throw locateShellError(e, { file: this.file, line: node.startLine, endLine: node.endLine, snippet: node.original });
      }
      throw e;
    }
  }

  // One word, variables substituted and quotes removed. Given the stage, a
  // variable it does not set is reported (UndefinedVar), as BuildKit does for
  // the instructions it expands word by word (not RUN, CMD, ENTRYPOINT, ARG).
  expand(node: Instruction, word: string, env: ReadonlyMap<string, string>, st?: StageState): string {
    const res = this.located(node, () => expandWord(word, env, { escapeToken: this.esc }));
    if (st && res.unmatched.length) checkUndefinedVars(this, st, node, res.unmatched);
    return res.value;
  }

  // One word that may expand to several (EXPOSE).
  expandSplit(node: Instruction, word: string, env: ReadonlyMap<string, string>, st?: StageState): string[] {
    const res = this.located(node, () => expandWords(word, env, { escapeToken: this.esc }));
    if (st && res.unmatched.length) checkUndefinedVars(this, st, node, res.unmatched);
    return res.words;
  }

  // A build check's warning at an instruction (the policy of `# check=` applies at the end).
  check(node: Instruction, rule: string, message: string): void {
    this.warnings.push({ rule, message, line: node.startLine, endLine: node.endLine });
  }

  // The .dockerignore as a matcher (CopyIgnoredFile), made when first needed.
  private ignore: PatternMatcher | null | undefined;
  ignoreMatcher(): PatternMatcher | null {
    if (this.ignore === undefined) this.ignore = this.opts.dockerignore?.length ? new PatternMatcher(this.opts.dockerignore) : null;
    return this.ignore;
  }

  // The ARGs every build has before any is declared: platforms and TARGETSTAGE.
  automaticArgs(): Map<string, string> {
    const env = new Map(platformArgs(this.targetPlatform, this.buildPlatform));
    env.set('TARGETSTAGE', this.targetName);
    return env;
  }

  // The progress text of an instruction: as written, keyword upper-cased, set
  // variables substituted, quotes and unset references kept (BuildKit's processCmdEnv).
  displayText(node: Instruction, env: ReadonlyMap<string, string>, suffix = ''): string {
    let text = node.original.trim() + suffix;
    try {
      text = lexWords(text, env, { escapeToken: this.esc, rawQuotes: true, skipUnsetEnv: true }).value;
    } catch {
      // keep the raw text
    }
    const m = /^(\S+)/.exec(text);
    return m ? m[1].toUpperCase() + text.slice(m[1].length) : text;
  }

  // ---- graph helpers ----

  // Where a vertex comes from, for the failure context (graph/types.ts location).
  location(node: Instruction): LineRange[] {
    return [{ start: node.startLine, end: node.endLine ?? node.startLine }];
  }

  // A file step on top of the stage's filesystem; `extra` are the other inputs its actions copy from.
  fileOp(st: StageState, node: Instruction, name: string, actions: FileAction[], extra: Ref[], link?: boolean): Ref {
    const inputs: Ref[] = [];
    let base = -1;
    if (st.ref) {
      inputs.push(st.ref);
      base = 0;
    }
    inputs.push(...extra);
    return this.b.add({
      kind: 'file',
      name,
      inputs,
      platform: st.platform,
      base,
      actions,
      location: this.location(node),
      ...(link ? { link: true } : {}),
      ...(this.opts.noCache ? { ignoreCache: true } : {}),
      ...(this.noCacheStage(st) ? { noCacheStage: true } : {}),
    });
  }

  // Whether --no-cache-filter names this stage (BuildKit compares names without case).
  noCacheStage(st: StageState): boolean {
    return Boolean(st.stage.name && this.opts.noCacheStages?.some((n) => n.toLowerCase() === st.stage.name));
  }

  // A heredoc as a filesystem holding one file, /<name>.
  inlineDocument(st: StageState, name: string, mode: number, data: string): Ref {
    return this.b.add({ kind: 'file', name: INLINE_NAME, inputs: [], platform: st.platform, base: -1, actions: [{ op: 'mkfile', path: '/' + name, mode, data }] });
  }

  // An empty filesystem, for --from a stage that has no files (FROM scratch + metadata).
  scratchRef(): Ref {
    return this.b.add({ kind: 'file', name: '[internal] scratch', inputs: [], base: -1, actions: [] });
  }

  // The build context, with `src` among the paths it must provide.
  contextRef(src: string): Ref {
    const p = contextPattern(src);
    if (p === '.') this.contextAll = true;
    else this.contextPaths.add(p);
    return this.b.add({ kind: 'local', name: CONTEXT_NAME, inputs: [], source: CONTEXT_PLACEHOLDER });
  }

  // ---- driver ----

  async run(): Promise<BuildGraph> {
    for (const w of this.parsed.warnings) this.warnings.push({ ...w });
    const split = splitStages(commandsOf(this.parsed, { file: this.file }), this.file);
    this.stages = split.stages;
    this.singleStage = this.stages.length === 1;
    const target = findTarget(this.stages, this.opts.target, this.file);
    // TARGETSTAGE: --target as given, else the last stage's name, else "default"
    // (BuildKit's testTargetStageNameArg: an unnamed last stage reads "default").
    this.targetName = this.opts.target || target.name || 'default';

    // Global scope: automatic platform args, then ARGs before the first FROM.
    for (const [k, v] of this.automaticArgs()) this.globalEnv.set(k, v);
    for (const cmd of split.metaArgs) {
      for (const arg of cmd.args) {
        let value: string | undefined;
        if (arg.value !== undefined) value = this.expand(cmd.node, arg.value, this.globalEnv);
        if (Object.prototype.hasOwnProperty.call(this.buildArgs, arg.key)) value = this.buildArgs[arg.key];
        // An ARG without a value does not unset an earlier global value.
        if (value !== undefined) this.globalEnv.set(arg.key, value);
        this.usedArgs.add(arg.key);
      }
    }

    // --no-cache-filter: BuildKit ignores a name no stage has; img says so.
    for (const n of this.opts.noCacheStages ?? []) {
      if (!this.stages.some((st) => st.name === n.toLowerCase())) this.warnings.push({ message: `--no-cache-filter: no stage named "${n}" in ${this.file}` });
    }

    // Like BuildKit, stage references are checked in every stage, used or not.
    checkStageRefs(this);
    checkFromLines(this, this.stages, split.metaArgs, this.globalEnv);

    // Resolve the base images of the stages the target needs, all at once,
    // before dispatching (the registry round-trips dominate).
    prefetch(this, target);
    const final = await this.dispatch(target);
    // Checking (`img build --check`) looks at every stage, as BuildKit's lint does.
    if (this.opts.allStages) for (const s of this.stages) await this.dispatch(s);

    const unused = unusedBuildArgs(this.opts.buildArgs, this.usedArgs);
    if (unused.length) this.warnings.push({ message: unusedBuildArgsWarning(unused) });
    this.applyChecks();

    const img = final.img;
    if (this.opts.labels && Object.keys(this.opts.labels).length) {
      const c = ensureConfig(img);
      c.Labels = { ...(c.Labels ?? {}), ...this.opts.labels };
    }
    if (this.epoch) img.created = this.epoch;
    else delete img.created;
    // An explicit target platform names the result's platform, variant and
    // os.version included: a base's "v8" goes with linux/arm64 (BuildKit's toDispatchState).
    if (this.opts.targetPlatform) {
      const t = this.targetPlatform;
      img.os = t.os;
      img.architecture = t.architecture;
      if (t.variant) img.variant = t.variant;
      else delete img.variant;
      if (t['os.version']) img['os.version'] = t['os.version'];
      else delete img['os.version'];
    }
    const { vertices, root } = this.finish(final.ref);
    return {
      vertices,
      root,
      config: img,
      platform: this.opts.targetPlatform ? this.targetPlatform : final.platform,
      warnings: this.warnings,
      secrets: [...this.secrets].sort(),
      ssh: [...this.ssh].sort(),
    };
  }

  // `# check=`: drop what it skips (and experimental rules it does not enable),
  // then fail on what is left when it says error=true. The error carries the
  // warnings, so the build can show them before it.
  private applyChecks(): void {
    const policy = checkPolicy(this.parsed.directives.find((d) => d.name === 'check')?.value);
    const kept = applyCheckPolicy(this.warnings, policy);
    this.warnings.splice(0, this.warnings.length, ...kept);
    const err = checkError(kept, policy, this.file);
    if (err) {
      err.warnings = [...kept];
      throw err;
    }
  }

  // A stage's result, converted once however many stages use it.
  dispatch(stage: Stage): Promise<StageState> {
    let p = this.done.get(stage);
    if (!p) {
      p = dispatchStage(this, stage);
      this.done.set(stage, p);
    }
    return p;
  }

  dispatchCommand(st: StageState, cmd: StageCommand): Promise<void> | void {
    switch (cmd.keyword) {
      case 'RUN':
        return dispatchRun(this, st, cmd);
      case 'COPY':
      case 'ADD':
        return dispatchCopy(this, st, cmd);
      case 'WORKDIR':
        return dispatchWorkdir(this, st, cmd);
      case 'ARG':
        return dispatchArg(this, st, cmd);
      case 'ENV':
        return dispatchEnv(this, st, cmd);
      case 'LABEL':
        return dispatchLabel(this, st, cmd);
      case 'MAINTAINER':
        return dispatchMaintainer(this, st, cmd);
      case 'EXPOSE':
        return dispatchExpose(this, st, cmd);
      case 'USER':
        return dispatchUser(this, st, cmd);
      case 'VOLUME':
        return dispatchVolume(this, st, cmd);
      case 'STOPSIGNAL':
        return dispatchStopSignal(this, st, cmd);
      case 'SHELL':
        return dispatchShell(this, st, cmd);
      case 'CMD':
        return dispatchCmd(this, st, cmd);
      case 'ENTRYPOINT':
        return dispatchEntrypoint(this, st, cmd);
      case 'HEALTHCHECK':
        return dispatchHealthcheck(this, st, cmd);
      case 'ONBUILD':
        return dispatchOnbuild(this, st, cmd);
    }
  }

  // Swap the context placeholder for the real context source (its include
  // patterns now known) and re-hash every vertex downstream of it.
  private finish(root: Ref | null): { vertices: Record<VertexId, Vertex>; root: Ref | null } {
    if (!root) return { vertices: {}, root: null };
    let vertices = prune(this.b.vertices, [root.vertex]);
    const placeholder = Object.values(vertices).find((v) => v.kind === 'local' && v.source === CONTEXT_PLACEHOLDER);
    if (!placeholder) return { vertices, root };
    const patterns = this.contextAll ? undefined : [...this.contextPaths].sort();
    const real = this.b.add({
      kind: 'local',
      name: CONTEXT_NAME,
      inputs: [],
      source: 'context',
      includePatterns: patterns,
      followPaths: patterns,
      excludePatterns: this.opts.dockerignore?.length ? [...this.opts.dockerignore] : undefined,
    });
    const map = new Map<VertexId, VertexId>([[placeholder.id, real.vertex]]);
    const out: Record<VertexId, Vertex> = {};
    for (const v of topoOrder(vertices, [root.vertex])) {
      if (v.id === placeholder.id) {
        out[real.vertex] = this.b.get(real.vertex)!;
        continue;
      }
      if (!v.inputs.some((i) => map.has(i.vertex))) {
        out[v.id] = v;
        continue;
      }
      const { id: _old, name, ...rest } = v;
      const inputs = v.inputs.map((i) => ({ vertex: map.get(i.vertex) ?? i.vertex, output: i.output }));
      const def = { ...rest, inputs } as Omit<Vertex, 'id' | 'name'>;
      // Ids are unique 64-hex strings, so swapping them in the stored canonical
      // JSON equals re-serializing the definition.
      let canonical = this.b.canonical.get(v.id) ?? canonicalDefinition(v);
      for (const i of v.inputs) {
        const to = map.get(i.vertex);
        if (to) canonical = canonical.split(i.vertex).join(to);
      }
      const id = digestOfCanonical(canonical);
      map.set(v.id, id);
      out[id] = { id, name, ...def } as Vertex;
    }
    vertices = out;
    return { vertices, root: { vertex: map.get(root.vertex) ?? root.vertex, output: root.output } };
  }
}
