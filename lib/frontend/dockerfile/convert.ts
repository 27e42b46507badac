// Dockerfile → build graph, with BuildKit's (dockerfile2llb) meaning: ARG
// scoping, which instructions expand variables, stage references, COPY/ADD
// source kinds, RUN mounts, and the image config accumulated exactly as Docker
// writes it (history strings included). Pure TypeScript: no node: imports.

import type { HealthConfig, ImageConfig, Platform } from '../../images/types';
import { familiarName, formatReference, parseReference } from '../../images/reference';
import type { BuildGraph, ChownSpec, ExecMount, ExecVertex, FileAction, Ref, Vertex, VertexId } from '../../graph/types';
import { GraphBuilder, prune, topoOrder } from '../../graph/builder';
import { canonicalDefinition, digestOfCanonical } from '../../graph/digest';
import type { Flag, Instruction, ParsedDockerfile } from './ast';
import { DockerfileError, ShellExpansionError, locateShellError } from './errors';
import { expandWord, expandWords, lexWords } from './shell';
import { parseHeredocWord } from './heredoc';
import { INSTRUCTION_FLAGS, parseGoDuration } from './instructions';
import { parseDockerfile } from './parser';
import { proxyEnv, runCommandString, unusedBuildArgs, unusedBuildArgsWarning, type DeclaredArg } from './args';
import {
  DEFAULT_PATH, DEFAULT_SHELL, addEnv, cloneImage, emptyImage, ensureConfig, envKey, goQuoteSlice,
  healthcheckHistory, historyEntry, parsePortSpec, validSignal,
} from './config';
import { type Stage, findTarget, splitStages } from './stages';
import {
  baseName, cleanPath, contextPattern, destIsDir, joinPath, httpFilename, isHttpUrl, parseChown, parseGitUrl,
  resolveAgainst, splitParents, validChmod,
} from './copy';
import { parseMount, type MountSpec } from './mounts';
import { DEFAULT_PLATFORM, formatPlatform, parsePlatform, platformArgs } from './platform';

export interface ConvertOptions {
  filename?: string; // for error messages, default 'Dockerfile'
  buildArgs?: Record<string, string>;
  target?: string;
  targetPlatform?: Platform;
  buildPlatform?: Platform;
  labels?: Record<string, string>; // --label overrides
  noCache?: boolean;
  dockerignore?: string[]; // patterns, already parsed
  namedContexts?: Record<string, { kind: 'local' | 'image'; ref: string }>; // --build-context
  // Resolve a base image's config (the caller does the registry work). null = unknown.
  resolveImageConfig: (ref: string, platform: Platform) => Promise<{ ref: string; digest: string; config: ImageConfig } | null>;
  sourceDateEpoch?: number;
}

const CONTEXT_NAME = '[internal] load build context';
const INLINE_NAME = '[internal] preparing inline document';
// Stands in for the build context until every COPY source is known; the
// vertices that use it are re-hashed at the end (see finish()).
const CONTEXT_PLACEHOLDER = '\u0000context-placeholder';

type NamedCtx = { kind: 'local' | 'image'; ref: string };

interface StageState {
  stage: Stage;
  label: string; // progress name prefix: "builder", "stage-1", or "" for a lone stage
  ref: Ref | null;
  img: ImageConfig;
  env: Map<string, string>; // the environment RUN sees and expansion uses (ENV + ARG)
  declared: DeclaredArg[]; // ARGs declared in the stage so far (for RUN history)
  cmdSet: boolean;
  platform: Platform;
  cmdIndex: number;
  cmdTotal: number;
  inTrigger: boolean; // dispatching an ONBUILD trigger: progress names say so
}

// Things an instruction may point at with --from / from=.
type Source = { kind: 'stage'; st: StageState } | { kind: 'ref'; ref: Ref; name: string };

export async function dockerfileToGraph(text: string, opts: ConvertOptions): Promise<BuildGraph> {
  const parsed = parseDockerfile(text, { filename: opts.filename ?? 'Dockerfile' });
  return convertDockerfile(parsed, opts);
}

export async function convertDockerfile(parsed: ParsedDockerfile, opts: ConvertOptions): Promise<BuildGraph> {
  return new Converter(parsed, opts).run();
}

function isoEpoch(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
}

class Converter {
  private readonly file: string;
  private readonly esc: '\\' | '`';
  private readonly b = new GraphBuilder();
  private readonly targetPlatform: Platform;
  private readonly buildPlatform: Platform;
  private readonly buildArgs: Record<string, string>;
  private readonly epoch?: string;
  private readonly warnings: BuildGraph['warnings'] = [];
  private readonly usedArgs = new Set<string>();
  private readonly secrets = new Set<string>();
  private readonly ssh = new Set<string>();
  private readonly contextPaths = new Set<string>();
  private contextAll = false;
  private stages: Stage[] = [];
  private globalEnv = new Map<string, string>(); // for FROM lines and --platform
  private readonly done = new Map<Stage, Promise<StageState>>();
  private readonly resolved = new Map<string, Promise<{ ref: string; digest: string; config: ImageConfig } | null>>();
  private readonly proxy: string[];
  private singleStage = false;

  constructor(
    private readonly parsed: ParsedDockerfile,
    private readonly opts: ConvertOptions,
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
  }

  // ---- errors and expansion ----

  private err(ins: Instruction, reason: string, hint?: string): DockerfileError {
    return new DockerfileError(reason, { file: this.file, line: ins.startLine, endLine: ins.endLine, snippet: ins.original, hint });
  }

  private expand(ins: Instruction, word: string, env: ReadonlyMap<string, string>): string {
    try {
      return expandWord(word, env, { escapeToken: this.esc }).value;
    } catch (e) {
      if (e instanceof ShellExpansionError) {
        throw locateShellError(e, { file: this.file, line: ins.startLine, endLine: ins.endLine, snippet: ins.original });
      }
      throw e;
    }
  }

  private expandSplit(ins: Instruction, word: string, env: ReadonlyMap<string, string>): string[] {
    try {
      return expandWords(word, env, { escapeToken: this.esc }).words;
    } catch (e) {
      if (e instanceof ShellExpansionError) {
        throw locateShellError(e, { file: this.file, line: ins.startLine, endLine: ins.endLine, snippet: ins.original });
      }
      throw e;
    }
  }

  // The progress text of an instruction: as written, keyword upper-cased, set
  // variables substituted, quotes and unset references kept (BuildKit's processCmdEnv).
  private displayText(ins: Instruction, env: ReadonlyMap<string, string>, suffix = ''): string {
    let text = ins.original.trim() + suffix;
    try {
      text = lexWords(text, env, { escapeToken: this.esc, rawQuotes: true, skipUnsetEnv: true }).value;
    } catch {
      // keep the raw text
    }
    const m = /^(\S+)/.exec(text);
    return m ? m[1].toUpperCase() + text.slice(m[1].length) : text;
  }

  private stepName(st: StageState, text: string): string {
    if (st.cmdTotal === 0) return text;
    st.cmdIndex++;
    const width = String(st.cmdTotal).length;
    const onbuild = st.inTrigger ? 'ONBUILD ' : '';
    return `[${st.label ? st.label + ' ' : ''}${String(st.cmdIndex).padStart(width)}/${st.cmdTotal}] ${onbuild}${text}`;
  }

  private flag(ins: Instruction, name: string): Flag | undefined {
    let found: Flag | undefined;
    for (const f of ins.flags) if (f.name === name) found = f;
    return found;
  }

  private flags(ins: Instruction, name: string): string[] {
    return ins.flags.filter((f) => f.name === name).map((f) => f.value ?? '');
  }

  private boolFlag(ins: Instruction, name: string): boolean | undefined {
    const f = this.flag(ins, name);
    if (!f) return undefined;
    if (f.value === null || f.value === '') return true;
    const v = f.value.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw this.err(ins, `invalid value for --${name}: ${JSON.stringify(f.value)}`, `use --${name} or --${name}=true|false`);
  }

  private checkFlags(ins: Instruction): void {
    const allowed = INSTRUCTION_FLAGS[ins.keyword] ?? {};
    for (const f of ins.flags) {
      if (!(f.name in allowed)) {
        const names = Object.keys(allowed);
        throw this.err(
          ins,
          `unknown flag: --${f.name}`,
          names.length ? `${ins.keyword} accepts ${names.map((n) => '--' + n).join(', ')}` : `${ins.keyword} takes no flags`,
        );
      }
    }
  }

  // ---- driver ----

  async run(): Promise<BuildGraph> {
    for (const w of this.parsed.warnings) this.warnings.push(w.rule ? { message: w.message, line: w.line, rule: w.rule } : { message: w.message, line: w.line });
    const split = splitStages(this.parsed, this.file);
    this.stages = split.stages;
    this.singleStage = this.stages.length === 1;
    const target = findTarget(this.stages, this.opts.target, this.file);

    // Global scope: automatic platform args, then ARGs before the first FROM.
    for (const [k, v] of platformArgs(this.targetPlatform, this.buildPlatform)) this.globalEnv.set(k, v);
    this.globalEnv.set('TARGETSTAGE', target.name);
    for (const ins of split.metaArgs) {
      for (const kv of ins.keyValues ?? []) {
        let value: string | undefined;
        if (kv.hasEquals) value = this.expand(ins, kv.value, this.globalEnv);
        if (Object.prototype.hasOwnProperty.call(this.buildArgs, kv.key)) value = this.buildArgs[kv.key];
        // An ARG without a value does not unset an earlier global value.
        if (value !== undefined) this.globalEnv.set(kv.key, value);
        this.usedArgs.add(kv.key);
      }
    }

    // Like BuildKit, stage references are checked in every stage, used or not.
    this.checkStageRefs();

    // Resolve the base images of the stages the target needs, all at once,
    // before dispatching (the registry round-trips dominate).
    this.prefetch(target);
    const final = await this.dispatch(target);

    const unused = unusedBuildArgs(this.opts.buildArgs, this.usedArgs);
    if (unused.length) this.warnings.push({ message: unusedBuildArgsWarning(unused) });

    const img = final.img;
    if (this.opts.labels && Object.keys(this.opts.labels).length) {
      const c = ensureConfig(img);
      c.Labels = { ...(c.Labels ?? {}), ...this.opts.labels };
    }
    if (this.epoch) img.created = this.epoch;
    else delete img.created;
    // An explicit target platform names the result's platform (BuildKit's finalizeResultImage).
    if (this.opts.targetPlatform) {
      const t = this.targetPlatform;
      const same = img.os === t.os && img.architecture === t.architecture;
      img.os = t.os;
      img.architecture = t.architecture;
      if (t.variant || !same) {
        if (t.variant) img.variant = t.variant;
        else delete img.variant;
      }
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

  private resolve(ref: string, platform: Platform) {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.resolved.get(key);
    if (!p) {
      p = this.opts.resolveImageConfig(ref, platform);
      // A rejected prefetch must not become an unhandled rejection; dispatch awaits it again.
      p.catch(() => undefined);
      this.resolved.set(key, p);
    }
    return p;
  }

  // Resolution failures name the Dockerfile line, keeping the resolver's hint.
  private async resolveAt(ins: Instruction, ref: string, platform: Platform) {
    try {
      return await this.resolve(ref, platform);
    } catch (e) {
      if (e instanceof DockerfileError) throw e;
      const err = e as Error & { hint?: string };
      throw new DockerfileError(`failed to resolve source metadata for ${ref}: ${err.message}`, {
        file: this.file,
        line: ins.startLine,
        endLine: ins.endLine,
        snippet: ins.original,
        hint: err.hint ?? 'check the image name and that the registry is reachable',
        cause: e,
      });
    }
  }

  // Best-effort: start resolving the images of every stage reachable from
  // `target` (errors surface later, with line numbers, in dispatch).
  private prefetch(target: Stage): void {
    const seen = new Set<Stage>();
    const visit = (s: Stage): void => {
      if (seen.has(s)) return;
      seen.add(s);
      try {
        const base = this.expand(s.from, s.baseName, this.globalEnv);
        const earlier = this.stages.slice(0, s.index).find((x) => x.name && x.name === base.toLowerCase());
        let platform = this.targetPlatform;
        if (s.platformFlag !== undefined) platform = parsePlatform(this.expand(s.from, s.platformFlag, this.globalEnv)) ?? platform;
        if (s.name && this.namedContext(s.name)) return;
        if (earlier) visit(earlier);
        else if (base.toLowerCase() !== 'scratch' && !this.namedContext(base)) {
          void this.resolve(formatReference(parseReference(base)), platform);
        }
      } catch {
        // reported by dispatch
      }
      for (const ins of s.commands) {
        const froms = [...this.flags(ins, 'from')];
        for (const m of this.flags(ins, 'mount')) {
          const f = /(?:^|,)from=([^,]*)/.exec(m);
          if (f) froms.push(f[1]);
        }
        for (const f of froms) {
          const dep = this.lookupStage(f, s);
          if (dep) visit(dep);
          else if (!/^[0-9]+$/.test(f) && !f.includes('$') && !this.namedContext(f) && !this.stageByRef(f, 'mount')) {
            // COPY --from=<image>: resolve it with the others.
            try {
              void this.resolve(formatReference(parseReference(f)), this.targetPlatform);
            } catch {
              // reported by dispatch
            }
          }
        }
      }
    };
    visit(target);
  }

  // Checks BuildKit makes on every stage, used or not: no variables in
  // --from, stage indexes in range, no stage copying from itself.
  private checkStageRefs(): void {
    for (const s of this.stages) {
      for (const ins of s.commands) {
        if (ins.keyword === 'COPY') for (const f of this.flags(ins, 'from')) this.checkStageRef(ins, s, f, 'from');
        if (ins.keyword === 'RUN') {
          for (const m of this.flags(ins, 'mount')) {
            const f = /(?:^|,)from=([^,]*)/i.exec(m);
            if (f) this.checkStageRef(ins, s, f[1], 'mount');
          }
        }
      }
    }
  }

  private checkStageRef(ins: Instruction, cur: Stage, from: string, flagName: 'from' | 'mount'): void {
    if (flagName === 'mount' && /\$./.test(from)) {
      throw this.err(ins, "'from' doesn't support variable expansion, define alias stage instead", 'ARG X=... before the first FROM, then FROM ${X} AS alias, and from=alias');
    }
    if (flagName === 'from' && /\$/.test(from) && expandWord(from, new Map(), { escapeToken: this.esc }).value !== from) {
      throw this.err(
        ins,
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
        `ARG X=...  (before the first FROM), then FROM \${X} AS src, and ${ins.keyword} --from=src`,
      );
    }
    if (/^[0-9]+$/.test(from) && flagName === 'from') {
      const i = Number(from);
      if (i >= this.stages.length) {
        throw this.err(ins, `invalid stage index ${i}`, `the Dockerfile has stages 0 to ${this.stages.length - 1}`);
      }
    }
    const target = this.stageByRef(from, flagName);
    if (target === cur) {
      throw this.err(ins, `circular dependency detected on stage: ${cur.name || String(cur.index)}`, 'a stage cannot use its own result');
    }
  }

  // The stage a --from / from= value names (any position), if any.
  private stageByRef(from: string, flagName: 'from' | 'mount'): Stage | undefined {
    if (flagName === 'from' && /^[0-9]+$/.test(from)) return this.stages[Number(from)];
    return this.stages.find((s) => s.name && s.name === from.toLowerCase());
  }

  private lookupStage(from: string, cur: Stage): Stage | undefined {
    if (/^[0-9]+$/.test(from)) {
      const i = Number(from);
      return i < cur.index ? this.stages[i] : undefined;
    }
    const s = this.stages.find((x) => x.name && x.name === from.toLowerCase());
    return s && s.index < cur.index ? s : undefined;
  }

  private dispatch(stage: Stage): Promise<StageState> {
    let p = this.done.get(stage);
    if (!p) {
      p = this.dispatchStage(stage);
      this.done.set(stage, p);
    }
    return p;
  }

  // ---- FROM ----

  private async dispatchStage(stage: Stage): Promise<StageState> {
    const ins = stage.from;
    const base = this.expand(ins, stage.baseName, this.globalEnv);
    if (base === '') {
      throw this.err(ins, `base name (${stage.baseName}) should not be blank`, 'set the ARG used in FROM (--build-arg) or give it a default');
    }
    let platform: Platform | undefined;
    if (stage.platformFlag !== undefined) {
      const ps = this.expand(ins, stage.platformFlag, this.globalEnv);
      const p = parsePlatform(ps);
      if (!p) throw this.err(ins, `failed to parse platform ${JSON.stringify(ps)}`, 'use os/arch[/variant], e.g. linux/arm64');
      platform = p;
    }
    const label = this.singleStage ? '' : stage.name || `stage-${stage.index}`;
    const lower = base.toLowerCase();
    // Only stages defined above can be a base; a later name is an image reference.
    // --build-context <stage name>=... replaces the whole stage.
    const override = stage.name ? this.namedContext(stage.name) : undefined;
    const baseStage = override ? undefined : this.stages.slice(0, stage.index).find((s) => s.name && s.name === lower);
    const named = override ?? (baseStage ? undefined : this.namedContext(base));

    let st: StageState;
    let triggers: string[] = [];
    // When FROM is a vertex (an image or a named context) it is step 1.
    let fromStep: ((name: string) => Ref) | undefined;
    let fromText = '';
    const mkState = (img: ImageConfig, ref: Ref | null, plat: Platform): StageState => ({
      stage,
      label,
      ref,
      img,
      env: new Map((img.config?.Env ?? []).map((e) => [envKey(e), e.slice(envKey(e).length + 1)] as [string, string])),
      declared: [],
      cmdSet: false,
      platform: plat,
      cmdIndex: 0,
      cmdTotal: 0,
      inTrigger: false,
    });

    if (baseStage) {
      const parent = await this.dispatch(baseStage);
      const img = cloneImage(parent.img);
      // ONBUILD written in the parent stage runs here (once); the config's
      // OnBuild list is not carried over.
      if (img.config) delete img.config.OnBuild;
      triggers = baseStage.commands.filter((c) => c.keyword === 'ONBUILD').map(onbuildExpression);
      st = mkState(img, parent.ref, platform ?? parent.platform);
    } else if (lower === 'scratch' && !named) {
      const plat = platform ?? this.targetPlatform;
      st = mkState(emptyImage(plat), null, plat);
    } else if (named?.kind === 'local') {
      // A directory given with --build-context replaces the image.
      const plat = platform ?? this.targetPlatform;
      st = mkState(emptyImage(plat), null, plat);
      fromText = `FROM ${base}`;
      fromStep = (name) => this.b.add({ kind: 'local', name, inputs: [], source: named.ref });
    } else {
      const plat = platform ?? this.targetPlatform;
      const { refStr, digest, img } = await this.imageBase(ins, named ? named.ref : base, plat);
      // Triggers run once here and are not passed on to images built from this one.
      triggers = img.config?.OnBuild ?? [];
      if (img.config) delete img.config.OnBuild;
      st = mkState(img, null, plat);
      // An image without layers is scratch: no source vertex (BuildKit does the same).
      const layerless = (img.rootfs?.diff_ids ?? []).length === 0 && (img.history ?? []).every((h) => h.empty_layer);
      if (!layerless || !this.resolvedKnown(refStr, plat)) {
        fromText = `FROM ${showRef(refStr, digest)}`;
        fromStep = (name) => this.b.add({ kind: 'image', name, inputs: [], platform: plat, ref: refStr, resolvedDigest: digest });
      }
      // The FROM still counts in the step total, as in BuildKit.
      st.cmdTotal = 1;
    }

    // ONBUILD triggers run first, as if written right after FROM.
    const trigInstrs = override ? [] : triggers.map((t) => this.parseTrigger(ins, t));
    // Progress numbering: FROM an image, then RUN/COPY/ADD/WORKDIR and every trigger.
    if (fromStep) st.cmdTotal = 1;
    if (!override) for (const c of stage.commands) if (['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(c.keyword)) st.cmdTotal++;
    st.cmdTotal += trigInstrs.length;
    if (fromStep) st.ref = fromStep(this.stepName(st, fromText));
    if (override) return st;
    // Make sure PATH is always set (BuildKit does this for every stage).
    const cfg = ensureConfig(st.img);
    if (!(cfg.Env ?? []).some((e) => envKey(e) === 'PATH')) {
      cfg.Env = [...(cfg.Env ?? []), `PATH=${DEFAULT_PATH}`];
      st.env.set('PATH', DEFAULT_PATH);
    }
    st.img.architecture = st.img.architecture || st.platform.architecture;
    st.img.os = st.img.os || st.platform.os;

    st.inTrigger = true;
    for (const c of trigInstrs) await this.dispatchInstruction(st, c);
    st.inTrigger = false;
    for (const c of stage.commands) await this.dispatchInstruction(st, c);
    return st;
  }

  // --build-context lookup as BuildKit does it: the name as written, then its
  // familiar form without ":latest" (so "alpine" matches FROM docker.io/library/alpine).
  private namedContext(name: string): NamedCtx | undefined {
    const all = this.opts.namedContexts;
    if (!all) return undefined;
    const lower = name.toLowerCase();
    if (lower === 'scratch' || lower === 'context') return undefined;
    if (all[name]) return all[name];
    try {
      const fam = familiarName(parseReference(name)).replace(/:latest$/, '');
      return all[fam];
    } catch {
      return undefined;
    }
  }

  // Whether the resolver knew the image (unknown images keep their FROM vertex).
  private resolvedKnown(ref: string, platform: Platform): boolean {
    return this.knownImages.has(`${ref}|${formatPlatform(platform)}`);
  }

  private readonly knownImages = new Set<string>();

  private parseTrigger(from: Instruction, trigger: string): Instruction {
    let parsed: ParsedDockerfile;
    try {
      parsed = parseDockerfile(trigger + '\n', { filename: this.file });
    } catch (e) {
      throw this.err(from, `invalid ONBUILD trigger in base image: ${JSON.stringify(trigger)}: ${(e as Error).message}`);
    }
    const t = parsed.instructions[0];
    if (!t) throw this.err(from, `invalid ONBUILD trigger in base image: ${JSON.stringify(trigger)}`);
    if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(t.keyword)) {
      throw this.err(from, `${t.keyword} isn't allowed as an ONBUILD trigger (from the base image)`);
    }
    // Errors in a trigger point at the FROM that pulled it in.
    return { ...t, startLine: from.startLine, endLine: from.endLine };
  }

  private async imageBase(ins: Instruction, base: string, platform: Platform) {
    let refStr: string;
    try {
      refStr = formatReference(parseReference(base));
    } catch (e) {
      throw this.err(ins, `invalid base image reference "${base}": ${(e as Error).message}`, 'use NAME[:TAG][@DIGEST] with a lowercase name');
    }
    const res = await this.resolveAt(ins, refStr, platform);
    let img: ImageConfig;
    let digest: string | undefined;
    if (res) {
      this.knownImages.add(`${refStr}|${formatPlatform(platform)}`);
      img = cloneImage(res.config);
      digest = res.digest || undefined;
      if (res.ref) {
        try {
          refStr = formatReference(parseReference(res.ref));
        } catch {
          // keep ours
        }
      }
      if (!img.rootfs) img.rootfs = { type: 'layers', diff_ids: [] };
      if (!img.history) img.history = [];
    } else {
      img = emptyImage(platform);
      delete img.config!.WorkingDir;
    }
    return { refStr, digest, img };
  }

  // ---- instructions ----

  private async dispatchInstruction(st: StageState, ins: Instruction): Promise<void> {
    this.checkFlags(ins);
    const cfg = ensureConfig(st.img);
    const hist = (text: string, empty: boolean, suffix = false): void => {
      (st.img.history ??= []).push(historyEntry(text, empty, this.epoch, suffix));
    };
    switch (ins.keyword) {
      case 'ARG':
        return this.dispatchArg(st, ins, hist);
      case 'ENV': {
        // Every value expands against the environment before this instruction
        // (`ENV a=1 b=$a` gives b the old a), as in Docker.
        const pairs: [string, string][] = [];
        for (const kv of ins.keyValues ?? []) {
          const key = this.expand(ins, kv.key, st.env);
          if (key === '') throw this.err(ins, 'ENV names can not be blank');
          pairs.push([key, this.expand(ins, kv.value, st.env)]);
        }
        if (!pairs.length) throw this.err(ins, 'ENV requires at least one argument');
        for (const [key, value] of pairs) {
          cfg.Env = addEnv(cfg.Env ?? [], key, value);
          st.env.set(key, value);
        }
        return hist(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, true);
      }
      case 'LABEL': {
        const parts: string[] = [];
        for (const kv of ins.keyValues ?? []) {
          const key = this.expand(ins, kv.key, st.env);
          if (key === '') throw this.err(ins, 'LABEL names can not be blank');
          const value = this.expand(ins, kv.value, st.env);
          cfg.Labels = { ...(cfg.Labels ?? {}), [key]: value };
          parts.push(`${key}=${value}`);
        }
        if (!parts.length) throw this.err(ins, 'LABEL requires at least one argument');
        return hist(`LABEL ${parts.join(' ')}`, true);
      }
      case 'MAINTAINER': {
        const who = restAfterKeyword(ins);
        st.img.author = who;
        return hist(`MAINTAINER ${who}`, true);
      }
      case 'EXPOSE': {
        const ports: string[] = [];
        // BuildKit sorts the specs as written, then expands and splits each.
        for (const w of [...ins.args].sort()) ports.push(...this.expandSplit(ins, w, st.env));
        if (!ports.length) throw this.err(ins, 'EXPOSE requires at least one argument');
        const exposed = { ...(cfg.ExposedPorts ?? {}) };
        const specs: string[] = [];
        for (const p of ports) {
          try {
            specs.push(...parsePortSpec(p));
          } catch (e) {
            throw this.err(ins, (e as Error).message, 'write PORT, PORT/PROTO or START-END[/PROTO] (tcp, udp or sctp)');
          }
        }
        for (const k of specs) exposed[k] = {};
        cfg.ExposedPorts = exposed;
        // BuildKit records Go's %v of the parsed list: EXPOSE [80/tcp 53/udp].
        return hist(`EXPOSE [${specs.join(' ')}]`, true);
      }
      case 'USER': {
        if (ins.args.length !== 1) throw this.err(ins, 'USER requires exactly one argument', 'write USER <user>[:<group>]');
        const user = this.expand(ins, ins.args[0], st.env);
        cfg.User = user;
        return hist(`USER ${user}`, true);
      }
      case 'WORKDIR':
        return this.dispatchWorkdir(st, ins, hist);
      case 'VOLUME': {
        const vols: string[] = [];
        for (const w of ins.args) {
          const v = this.expand(ins, w, st.env);
          if (v.trim() === '') throw this.err(ins, 'VOLUME specified can not be an empty string');
          vols.push(v.trim());
        }
        if (!vols.length) throw this.err(ins, 'VOLUME requires at least one argument');
        const volumes = { ...(cfg.Volumes ?? {}) };
        for (const v of vols) volumes[v] = {};
        cfg.Volumes = volumes;
        return hist(`VOLUME [${vols.join(' ')}]`, true);
      }
      case 'STOPSIGNAL': {
        if (ins.args.length !== 1) throw this.err(ins, 'STOPSIGNAL requires exactly one argument');
        const sig = this.expand(ins, ins.args[0], st.env);
        if (!validSignal(sig)) throw this.err(ins, `invalid signal: ${sig}`, 'use a signal name like SIGTERM or a number like 9');
        cfg.StopSignal = sig;
        return hist(`STOPSIGNAL ${sig}`, true);
      }
      case 'SHELL': {
        if (!ins.json) throw this.err(ins, 'SHELL requires the arguments to be in JSON form', 'write SHELL ["executable", "parameters"]');
        if (!ins.args.length) throw this.err(ins, 'SHELL requires at least one argument');
        cfg.Shell = [...ins.args];
        return hist(`SHELL [${ins.args.join(' ')}]`, true); // Go's %v of a slice
      }
      case 'CMD': {
        const args = this.commandArgs(st, ins);
        cfg.Cmd = args;
        // BuildKit marks CMD's arguments as escaped on every platform.
        cfg.ArgsEscaped = true;
        st.cmdSet = true;
        return hist(`CMD ${goQuoteSlice(args)}`, true);
      }
      case 'ENTRYPOINT': {
        const args = this.commandArgs(st, ins);
        // ENTRYPOINT [] clears it (null), like BuildKit's emptyAsNil.
        cfg.Entrypoint = ins.json && args.length === 0 ? null : args;
        // A new ENTRYPOINT drops a CMD inherited from the base (not one set in this stage).
        if (!st.cmdSet) cfg.Cmd = null;
        return hist(`ENTRYPOINT ${goQuoteSlice(args)}`, true);
      }
      case 'HEALTHCHECK':
        return this.dispatchHealthcheck(st, ins, hist);
      case 'ONBUILD': {
        const trigger = onbuildExpression(ins);
        const kw = (ins.onbuild?.keyword ?? trigger.split(/\s+/)[0] ?? '').toUpperCase();
        if (kw === 'ONBUILD') throw this.err(ins, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (kw === 'FROM' || kw === 'MAINTAINER') throw this.err(ins, `${kw} isn't allowed as an ONBUILD trigger`);
        if (!trigger) throw this.err(ins, 'ONBUILD requires at least one argument');
        // BuildKit records no history entry for ONBUILD.
        cfg.OnBuild = [...(cfg.OnBuild ?? []), trigger];
        return;
      }
      case 'RUN':
        return this.dispatchRun(st, ins, hist);
      case 'COPY':
      case 'ADD':
        return this.dispatchCopy(st, ins, hist);
      case 'FROM':
        throw this.err(ins, 'FROM is not allowed here');
      default:
        throw this.err(ins, `unknown instruction: ${ins.keyword}`);
    }
  }

  private dispatchArg(st: StageState, ins: Instruction, hist: (t: string, e: boolean) => void): void {
    const parts: string[] = [];
    const kvs = ins.keyValues ?? [];
    if (!kvs.length) throw this.err(ins, 'ARG requires at least one argument');
    for (const kv of kvs) {
      const key = kv.key;
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(this.buildArgs, key)) value = this.buildArgs[key];
      else if (kv.hasEquals) value = this.expand(ins, kv.value, st.env);
      else value = this.globalEnv.get(key); // inherits the global value (automatic ARGs too)
      // Like BuildKit, a declared ARG enters the RUN environment (an ENV given
      // after it wins again); the image Env is never touched.
      if (value !== undefined) st.env.set(key, value);
      const at = st.declared.findIndex((d) => d.key === key);
      if (at >= 0) st.declared[at] = { key, value };
      else st.declared.push({ key, value });
      this.usedArgs.add(key);
      parts.push(value === undefined ? key : `${key}=${value}`);
    }
    hist(`ARG ${parts.join(' ')}`, true);
  }

  private dispatchWorkdir(st: StageState, ins: Instruction, hist: (t: string, e: boolean) => void): void {
    if (ins.args.length !== 1) throw this.err(ins, 'WORKDIR requires exactly one argument', 'write WORKDIR /path');
    const raw = this.expand(ins, ins.args[0], st.env);
    if (raw === '') throw this.err(ins, 'WORKDIR cannot be empty');
    const cfg = ensureConfig(st.img);
    const wd = resolveAgainst(cfg.WorkingDir || '/', raw);
    cfg.WorkingDir = wd;
    let layer = false;
    if (wd !== '/') {
      // BuildKit creates the directory right away, owned by the current USER.
      const chown = cfg.User ? parseChown(cfg.User) : undefined;
      const name = this.stepName(st, this.displayText(ins, st.env));
      st.ref = this.fileOp(st, name, [{ op: 'mkdir', path: wd, mode: 0o755, makeParents: true, chown }], []);
      layer = true;
    }
    hist(`WORKDIR ${wd}`, !layer);
  }

  private fileOp(st: StageState, name: string, actions: FileAction[], extra: Ref[], link?: boolean): Ref {
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
      ...(link ? { link: true } : {}),
      ...(this.opts.noCache ? { ignoreCache: true } : {}),
    });
  }

  // CMD/ENTRYPOINT/RUN argv: JSON form as is; shell form wrapped in SHELL.
  private commandArgs(st: StageState, ins: Instruction): string[] {
    if (ins.json) return [...ins.args];
    const shell = st.img.config?.Shell?.length ? st.img.config.Shell : DEFAULT_SHELL;
    const line = ins.args.join(' ');
    return [...shell, line];
  }

  private dispatchHealthcheck(st: StageState, ins: Instruction, hist: (t: string, e: boolean) => void): void {
    const cfg = ensureConfig(st.img);
    const kind = (ins.args[0] ?? '').toUpperCase();
    if (kind === 'NONE') {
      if (ins.flags.length || ins.args.length > 1) throw this.err(ins, 'HEALTHCHECK NONE takes no arguments');
      cfg.Healthcheck = { Test: ['NONE'] };
      return hist(healthcheckHistory(cfg.Healthcheck), true);
    }
    if (kind !== 'CMD') {
      throw this.err(ins, `Unknown type "${ins.args[0] ?? ''}" in HEALTHCHECK (try CMD)`, 'write HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE');
    }
    const rest = ins.args.slice(1);
    if (!rest.length || (!ins.json && rest.join(' ').trim() === '')) throw this.err(ins, 'Missing command after HEALTHCHECK CMD');
    const test = ins.json ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')];
    const h: HealthConfig = { Test: test };
    const dur = (name: string): number | undefined => {
      const f = this.flag(ins, name);
      if (!f) return undefined;
      const v = f.value ?? '';
      const ns = parseGoDuration(v);
      if (ns === undefined) throw this.err(ins, `time: invalid duration ${JSON.stringify(v)}`, 'use a duration like 30s, 1m30s or 500ms');
      if (ns !== 0 && ns < 1e6) throw this.err(ins, `Interval ${JSON.stringify(name)} cannot be less than 1ms`);
      return ns;
    };
    const interval = dur('interval');
    const timeout = dur('timeout');
    const startPeriod = dur('start-period');
    const startInterval = dur('start-interval');
    if (interval) h.Interval = interval;
    if (timeout) h.Timeout = timeout;
    if (startPeriod) h.StartPeriod = startPeriod;
    if (startInterval) h.StartInterval = startInterval;
    const r = this.flag(ins, 'retries');
    if (r) {
      const v = r.value ?? '';
      if (!/^-?[0-9]+$/.test(v)) throw this.err(ins, `invalid --retries value ${JSON.stringify(v)}`, 'use a whole number');
      const n = Number(v);
      if (n < 0) throw this.err(ins, `--retries cannot be negative (${n})`);
      if (n) h.Retries = n;
    }
    cfg.Healthcheck = h;
    hist(healthcheckHistory(h), true);
  }

  // ---- RUN ----

  private async dispatchRun(st: StageState, ins: Instruction, hist: (t: string, e: boolean, s?: boolean) => void): Promise<void> {
    const cfg = ensureConfig(st.img);
    let args: string[];
    // Secrets exposed as env vars show as **** in the progress name (BuildKit does this).
    const shownEnv = new Map(st.env);
    for (const raw of this.flags(ins, 'mount')) {
      const m = /(?:^|,)env=([^,]+)/.exec(raw);
      if (m && /(?:^|,)type=secret(?:,|$)/i.test(raw)) shownEnv.set(m[1], '****');
    }
    let nameSuffix = '';
    const extraMounts: { spec: ExecMount; ref: Ref }[] = [];
    if (ins.json) {
      args = [...ins.args];
    } else {
      let cmd = ins.args.join(' ');
      if (ins.heredocs.length) {
        const only = parseHeredocWord(cmd.trim());
        const h0 = ins.heredocs[0];
        if (only && ins.heredocs.length === 1) {
          if (h0.content.startsWith('#!')) {
            // A script with a shebang runs as a file (BuildKit mounts it at /dev/pipes/).
            const file = this.b.add({
              kind: 'file',
              name: INLINE_NAME,
              inputs: [],
              platform: st.platform,
              base: -1,
              actions: [{ op: 'mkfile', path: '/' + h0.name, mode: 0o755, data: h0.content }],
            });
            extraMounts.push({ spec: { target: '/dev/pipes/', type: 'bind', source: '/', readonly: true }, ref: file });
            cmd = '/dev/pipes/' + h0.name;
          } else {
            cmd = h0.content;
          }
          nameSuffix = ` (${summarizeHeredoc(h0.content)})`;
        } else {
          for (const h of ins.heredocs) cmd += '\n' + h.content + h.name;
        }
      }
      const shell = cfg.Shell?.length ? cfg.Shell : DEFAULT_SHELL;
      args = [...shell, cmd];
    }

    const network = this.flag(ins, 'network')?.value ?? 'default';
    if (!['default', 'none', 'host'].includes(network)) {
      throw this.err(ins, `invalid network mode ${JSON.stringify(network)}`, 'use --network=default, none or host');
    }
    const security = this.flag(ins, 'security')?.value ?? 'sandbox';
    if (!['sandbox', 'insecure'].includes(security)) {
      throw this.err(ins, `security ${JSON.stringify(security)} is not valid`, 'use --security=sandbox or insecure');
    }

    const cwd = cfg.WorkingDir || '/';
    const inputs: Ref[] = [];
    let rootfs = -1;
    if (st.ref) {
      inputs.push(st.ref);
      rootfs = 0;
    }
    const inputIndex = (r: Ref): number => {
      const i = inputs.findIndex((x) => x.vertex === r.vertex && x.output === r.output);
      if (i >= 0) return i;
      inputs.push(r);
      return inputs.length - 1;
    };
    const mounts: ExecMount[] = [];
    let sshCount = 0;
    for (const raw of this.flags(ins, 'mount')) {
      let spec: MountSpec;
      try {
        spec = parseMount(raw, (w) => this.expand(ins, w, st.env));
      } catch (e) {
        if (e instanceof DockerfileError) throw e;
        throw this.err(ins, `--mount=${raw}: ${(e as Error).message}`, 'see "RUN --mount" in the Dockerfile reference');
      }
      mounts.push(await this.runMount(st, ins, spec, cwd, inputIndex, sshCount));
      if (spec.type === 'ssh') sshCount++;
    }
    for (const m of extraMounts) mounts.push({ ...m.spec, input: inputIndex(m.ref) });

    const env = [...st.env].map(([k, v]) => `${k}=${v}`);
    const def: Omit<ExecVertex, 'id'> = {
      kind: 'exec',
      name: this.stepName(st, this.displayText(ins, shownEnv, nameSuffix)),
      inputs,
      platform: st.platform,
      rootfs,
      args,
      env,
      cwd,
      user: cfg.User ?? '',
      network: network as ExecVertex['network'],
      security: security as ExecVertex['security'],
      mounts,
      ...(this.proxy.length ? { proxyEnv: this.proxy } : {}),
      ...(this.opts.noCache ? { ignoreCache: true } : {}),
    };
    st.ref = this.b.add(def);
    hist(`RUN ${runCommandString(args, st.declared, st.env)}`, false, true);
  }

  private async runMount(
    st: StageState,
    ins: Instruction,
    spec: MountSpec,
    cwd: string,
    inputIndex: (r: Ref) => number,
    sshIndex: number,
  ): Promise<ExecMount> {
    let target = spec.target ?? '';
    if (target && !target.startsWith('/')) target = cleanPath('/' + cwd + '/' + target);
    else if (target) target = cleanPath(target);
    if (target === '/' && spec.type !== 'secret' && spec.type !== 'ssh') {
      throw this.err(ins, `invalid mount target "${spec.target}"`, 'mount somewhere below /');
    }
    const fromRef = async (): Promise<Ref | null> => {
      if (spec.from === undefined || spec.from === '') {
        return null;
      }
      const src = await this.source(st, ins, spec.from, 'mount');
      return src.kind === 'stage' ? src.st.ref ?? this.scratchRef() : src.ref;
    };
    switch (spec.type) {
      case 'bind': {
        const m: ExecMount = { target, type: 'bind', readonly: spec.readonly, source: cleanPath('/' + (spec.source ?? '/')) };
        if (spec.from === undefined || spec.from === '') {
          this.useContext(spec.source ?? '.');
          m.input = inputIndex(this.contextRef());
        } else {
          const r = await fromRef();
          if (r) m.input = inputIndex(r);
        }
        return m;
      }
      case 'cache': {
        const m: ExecMount = {
          target,
          type: 'cache',
          readonly: spec.readonly,
          cacheId: spec.id || cleanPath(spec.target ?? target),
          sharing: spec.sharing ?? 'shared',
        };
        if (spec.mode !== undefined) m.mode = spec.mode;
        if (spec.uid !== undefined) m.uid = spec.uid;
        if (spec.gid !== undefined) m.gid = spec.gid;
        const r = await fromRef();
        if (r) {
          m.input = inputIndex(r);
          m.source = cleanPath('/' + (spec.source ?? '/'));
        }
        return m;
      }
      case 'tmpfs': {
        const m: ExecMount = { target, type: 'tmpfs' };
        if (spec.size !== undefined) m.size = spec.size;
        return m;
      }
      case 'secret': {
        let id = spec.id ?? '';
        if (spec.source) id = spec.source;
        if (!id) id = spec.target ? baseName(spec.target) : '';
        if (!id) throw this.err(ins, 'secret mount needs an id, source or target', 'write --mount=type=secret,id=<id>');
        // With env= and no target the secret is only an environment variable.
        const t = spec.target ? target : spec.env !== undefined ? '' : `/run/secrets/${baseName(id)}`;
        this.secrets.add(id);
        const m: ExecMount = { target: t, type: 'secret', secretId: id, required: spec.required, mode: spec.mode ?? 0o400, uid: spec.uid ?? 0, gid: spec.gid ?? 0 };
        if (spec.env !== undefined) m.env = spec.env;
        return m;
      }
      case 'ssh': {
        const id = spec.id || 'default';
        this.ssh.add(id);
        return {
          target: spec.target ? target : `/run/buildkit/ssh_agent.${sshIndex}`,
          type: 'ssh',
          sshId: id,
          required: spec.required,
          mode: spec.mode ?? 0o600,
          uid: spec.uid ?? 0,
          gid: spec.gid ?? 0,
        };
      }
    }
  }

  // ---- context ----

  private useContext(src: string): void {
    const p = contextPattern(src);
    if (p === '.') this.contextAll = true;
    else this.contextPaths.add(p);
  }

  // An empty filesystem, for --from a stage that has no files (FROM scratch + metadata).
  private scratchRef(): Ref {
    return this.b.add({ kind: 'file', name: '[internal] scratch', inputs: [], base: -1, actions: [] });
  }

  private contextRef(): Ref {
    return this.b.add({ kind: 'local', name: CONTEXT_NAME, inputs: [], source: CONTEXT_PLACEHOLDER });
  }

  // --from=<stage name | index | named context | image>
  private async source(st: StageState, ins: Instruction, from: string, flagName: string): Promise<Source> {
    const kind = flagName === 'from' ? 'from' : 'mount';
    this.checkStageRef(ins, st.stage, from, kind);
    const dep = this.stageByRef(from, kind);
    if (dep && dep.index > st.stage.index) {
      throw this.err(
        ins,
        `cannot copy from stage "${from}", it needs to be defined before current stage "${st.label || st.stage.name || `stage-${st.stage.index}`}"`,
        `stage "${dep.name || dep.index}" starts on line ${dep.from.startLine}; move it above line ${st.stage.from.startLine}`,
      );
    }
    if (dep) return { kind: 'stage', st: await this.dispatch(dep) };
    const nc = this.namedContext(from);
    if (nc) {
      if (nc.kind === 'local') {
        return { kind: 'ref', name: from, ref: this.b.add({ kind: 'local', name: `[context ${from}] load from client`, inputs: [], source: nc.ref }) };
      }
      const { refStr, digest } = await this.imageBase(ins, nc.ref, this.targetPlatform);
      return { kind: 'ref', name: from, ref: this.imageRef(refStr, digest, this.targetPlatform) };
    }
    let refStr: string;
    try {
      refStr = formatReference(parseReference(from));
    } catch (e) {
      throw this.err(ins, `invalid --${flagName} value "${from}": not a stage name, stage index or image reference (${(e as Error).message})`, 'name an earlier stage (FROM ... AS name) or an image like busybox:latest');
    }
    // Like BuildKit, an image named in --from is for the target platform,
    // whatever platform the copying stage runs on.
    const res = await this.resolveAt(ins, refStr, this.targetPlatform);
    return { kind: 'ref', name: from, ref: this.imageRef(refStr, res?.digest || undefined, this.targetPlatform) };
  }

  private imageRef(refStr: string, digest: string | undefined, platform: Platform): Ref {
    return this.b.add({ kind: 'image', name: `FROM ${showRef(refStr, digest)}`, inputs: [], platform, ref: refStr, resolvedDigest: digest });
  }

  // ---- COPY / ADD ----

  private async dispatchCopy(st: StageState, ins: Instruction, hist: (t: string, e: boolean, s?: boolean) => void): Promise<void> {
    const isAdd = ins.keyword === 'ADD';
    const cmd = ins.keyword;
    const words = ins.json ? ins.args : ins.args;
    if (words.length < 2) {
      throw this.err(ins, `${cmd} requires at least two arguments, but only one was provided. Destination could not be determined`, `write ${cmd} <src>... <dest>`);
    }
    if (!ins.json && parseHeredocWord(words[words.length - 1])) {
      throw this.err(ins, `${cmd} cannot accept a heredoc as a destination`, 'put the heredoc before the destination path');
    }
    const env = st.env;
    const fromFlag = this.flag(ins, 'from')?.value ?? undefined;
    const chownRaw = this.flag(ins, 'chown')?.value ?? undefined;
    const chmodRaw = this.flag(ins, 'chmod')?.value ?? undefined;
    const link = this.boolFlag(ins, 'link') ?? false;
    const parents = this.boolFlag(ins, 'parents') ?? false;
    const unpackFlag = isAdd ? this.boolFlag(ins, 'unpack') : undefined;
    const keepGitDir = isAdd ? this.boolFlag(ins, 'keep-git-dir') ?? false : false;
    const checksumRaw = isAdd ? this.flag(ins, 'checksum')?.value ?? undefined : undefined;
    const excludes = this.flags(ins, 'exclude').map((e) => this.expand(ins, e, env));

    let chown: ChownSpec | undefined;
    if (chownRaw !== undefined) {
      const c = this.expand(ins, chownRaw, env);
      if (c !== '') chown = parseChown(c);
    }
    let chmod: string | undefined;
    if (chmodRaw !== undefined) {
      chmod = this.expand(ins, chmodRaw, env);
      if (chmod === '') chmod = undefined;
      else if (!validChmod(chmod)) {
        const msg = /^[0-9]+$/.test(chmod) || !/[ugoa+=,-]/.test(chmod)
          ? `invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777`
          : `invalid chmod parameter: '${chmod}'`;
        throw this.err(ins, msg, 'use octal (0755) or symbolic (u+x,g-w) permissions');
      }
    }
    const checksum = checksumRaw !== undefined ? this.expand(ins, checksumRaw, env) || undefined : undefined;

    const destRaw = words[words.length - 1];
    const srcWords = words.slice(0, -1);
    const dest0 = this.expand(ins, destRaw, env);
    const cwd = st.img.config?.WorkingDir || '/';
    let dest = resolveAgainst(cwd, dest0);
    if (destIsDir(dest0) && !dest.endsWith('/')) dest += '/';

    // Heredoc sources: "<<EOF" words that match this instruction's heredocs.
    type Src = { heredoc: { name: string; content: string; expand: boolean } } | { path: string };
    const srcs: Src[] = [];
    const heredocs = [...ins.heredocs];
    for (const w of srcWords) {
      const h = ins.json ? undefined : parseHeredocWord(w);
      const match = h ? heredocs.find((x) => x.name === h.name) : undefined;
      if (h && match) {
        heredocs.splice(heredocs.indexOf(match), 1);
        srcs.push({ heredoc: match });
      } else {
        srcs.push({ path: ins.json ? w : this.expand(ins, w, env) });
      }
    }
    if (srcs.length > 1 && !destIsDir(dest0)) {
      throw this.err(
        ins,
        `When using ${cmd} with more than one source file, the destination must be a directory and end with a /`,
        `write the destination as ${dest0}/`,
      );
    }
    if (checksum !== undefined) {
      if (srcs.length !== 1) throw this.err(ins, "checksum can't be specified for multiple sources");
      const one = srcs[0];
      if (!('path' in one) || !(isHttpUrl(one.path) || parseGitUrl(one.path))) {
        throw this.err(ins, 'checksum requires HTTP(S) or Git sources', 'drop --checksum, or use it with a URL or git source');
      }
      if (!parseGitUrl(one.path) && !/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(checksum)) {
        throw this.err(ins, `invalid checksum digest format: ${checksum}`, 'write --checksum=sha256:<64 hex digits>');
      }
    }
    if (parents && srcs.some((s) => 'path' in s && isHttpUrl(s.path))) {
      throw this.err(ins, '--parents cannot be used with URL sources');
    }

    let from: Source | undefined;
    if (fromFlag !== undefined) {
      if (isAdd) throw this.err(ins, 'ADD does not support --from', 'use COPY --from=<stage> instead');
      from = await this.source(st, ins, fromFlag, 'from');
    }

    const name = this.stepName(st, this.displayText(ins, env));
    const extra: Ref[] = [];
    const idx = (r: Ref): number => {
      const base = st.ref ? 1 : 0;
      const i = extra.findIndex((x) => x.vertex === r.vertex && x.output === r.output);
      if (i >= 0) return base + i;
      extra.push(r);
      return base + extra.length - 1;
    };
    const actions: FileAction[] = [];
    const histSrcs: string[] = [];
    const histHeredocs: string[] = [];
    // One named file (a heredoc, a download) or a whole tree (a git checkout): no
    // wildcards, no symlink following, copied as the source says.
    const exactCopy = (src: Ref, srcPath: string, attemptUnpack = false): FileAction => ({
      op: 'copy',
      src: idx(src),
      srcPaths: [srcPath],
      dest,
      chown,
      chmod,
      followSymlinks: false,
      dirCopyContents: false,
      createDestPath: true,
      allowWildcard: false,
      allowEmptyWildcard: false,
      attemptUnpack,
    });

    for (const s of srcs) {
      if ('heredoc' in s) {
        const h = s.heredoc;
        let data = h.content;
        if (h.expand) {
          try {
            data = expandHeredoc(data, env);
          } catch (e) {
            if (e instanceof ShellExpansionError) throw locateShellError(e, { file: this.file, line: ins.startLine, snippet: ins.original });
            throw e;
          }
        }
        const file = this.b.add({
          kind: 'file',
          name: INLINE_NAME,
          inputs: [],
          platform: st.platform,
          base: -1,
          actions: [{ op: 'mkfile', path: '/' + h.name, mode: 0o644, data }],
        });
        actions.push(exactCopy(file, '/' + h.name));
        histHeredocs.push(`<<${h.name}`);
        continue;
      }
      const src = s.path;
      histSrcs.push(src);
      if (src === '') throw this.err(ins, `${cmd} source can not be empty`);
      if (!from && isHttpUrl(src) && !parseGitUrl(src)) {
        if (!isAdd) throw this.err(ins, 'source can\'t be a URL for COPY', 'use ADD to download a URL');
        const filename = httpFilename(src);
        const http = this.b.add({
          kind: 'http',
          name,
          inputs: [],
          url: src,
          filename,
          ...(checksum !== undefined ? { checksum } : {}),
        });
        actions.push(exactCopy(http, '/' + filename, unpackFlag === true));
        continue;
      }
      const git = !from ? parseGitUrl(src) : null;
      if (git) {
        if (!isAdd) throw this.err(ins, 'source can\'t be a git ref for COPY', 'use ADD to fetch a git repository');
        const gv = this.b.add({
          kind: 'git',
          name,
          inputs: [],
          remote: git.remote,
          ...(git.ref ? { ref: git.ref } : {}),
          ...(checksum !== undefined ? { checksum } : {}),
          ...(git.subdir ? { subdir: git.subdir } : {}),
          ...(keepGitDir ? { keepGitDir: true } : {}),
        });
        actions.push(exactCopy(gv, '/'));
        continue;
      }
      // A local path: in the context, or in the --from stage/image.
      let srcRef: Ref | null;
      if (from) {
        srcRef = from.kind === 'stage' ? from.st.ref : from.ref;
      } else {
        if (parents) {
          const p = splitParents(src);
          this.useContext(joinPath(p.dir, p.pattern));
        } else this.useContext(src);
        srcRef = this.contextRef();
      }
      const action: Extract<FileAction, { op: 'copy' }> = {
        op: 'copy',
        src: idx(srcRef ?? this.scratchRef()),
        srcPaths: [cleanPath('/' + src)],
        dest,
        chown,
        chmod,
        followSymlinks: true,
        dirCopyContents: true,
        createDestPath: true,
        allowWildcard: true,
        allowEmptyWildcard: true,
        attemptUnpack: isAdd && unpackFlag !== false,
      };
      if (parents) {
        const p = splitParents(src);
        action.srcPaths = [p.dir];
        action.includePatterns = [p.pattern];
        action.parents = true;
      }
      if (excludes.length) action.excludePatterns = excludes;
      actions.push(action);
    }
    // Unused heredocs (the parser found them but no source word names them).
    st.ref = this.fileOp(st, name, actions, extra, link);
    // BuildKit's history line: keyword, --parents/--chown/--chmod as given, sources, destination.
    const flagsText = [parents ? '--parents' : '', chownRaw ? `--chown=${this.expand(ins, chownRaw, env)}` : '', chmod ? `--chmod=${chmod}` : ''].filter(Boolean);
    hist(`${[cmd, ...flagsText, ...histSrcs, ...histHeredocs, dest0].join(' ')}`, false, true);
  }
}

// The instruction text after its keyword (MAINTAINER): the parser keeps it
// as the single argument.
function restAfterKeyword(ins: Instruction): string {
  return (ins.args.length === 1 ? ins.args[0] : ins.original.trim().replace(/^\S+\s*/, '')).trim();
}

// An ONBUILD trigger as BuildKit stores it: the text after ONBUILD, with any
// heredoc bodies appended (so the trigger re-parses on its own).
function onbuildExpression(ins: Instruction): string {
  let text = ins.original.replace(/^\s*ONBUILD\s*/i, '');
  const heredocs = ins.heredocs.length ? ins.heredocs : ins.onbuild?.heredocs ?? [];
  for (const h of heredocs) text += '\n' + h.content + h.name;
  return text;
}

// Expands an unquoted-delimiter heredoc body the way BuildKit does: variables
// expand everywhere (quotes are plain characters, as in a shell heredoc) and
// backslash escapes the next character. Quotes are escaped so the word lexer
// keeps them literally.
function expandHeredoc(body: string, env: ReadonlyMap<string, string>): string {
  let w = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\' && i + 1 < body.length) {
      w += c + body[++i];
    } else if (c === "'" || c === '"') {
      w += '\\' + c;
    } else w += c;
  }
  return expandWord(w, env, { escapeToken: '\\' }).value;
}

// "FROM docker.io/library/alpine:3.19@sha256:…" as BuildKit shows a pinned base.
function showRef(refStr: string, digest: string | undefined): string {
  return digest ? `${refStr.replace(/@sha256:[a-f0-9]+$/, '')}@${digest}` : refStr;
}

function summarizeHeredoc(doc: string): string {
  const lines = doc.trim().replace(/\r\n/g, '\n').split('\n');
  return lines[0] + (lines.length > 1 ? '...' : '');
}

