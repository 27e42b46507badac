// Stages and bases: FROM (an image, an earlier stage, scratch, or a named
// build context), the ONBUILD triggers a base brings, base-image resolution
// (prefetched for every stage the target needs), and the sources that
// `COPY --from` / `RUN --mount from=` name: a stage, a named context or an image.

import type { ImageConfig, Platform } from '../../../images/types';
import { familiarName, formatReference, parseReference } from '../../../images/reference';
import type { Ref } from '../../../graph/types';
import type { ParsedDockerfile, Instruction } from '../ast';
import { DEFAULT_PATH, baseImageConfig, cloneImage, emptyImage, ensureConfig, envKey } from '../config';
import { DockerfileError } from '../errors';
import type { OnbuildCommand, StageCommand } from '../instructions/commands';
import { mountField } from '../instructions/mounts';
import { commandsOf } from '../instructions/parse';
import { parseDockerfile } from '../parser';
import { formatPlatform, parsePlatformOrNull as parsePlatform } from '../../../images/platform';
import { expandWord } from '../shell';
import type { Stage } from '../stages';
import type { Converter, ConvertOptions, NamedContext } from './converter';
import { type StageState, newStageState, stepName } from './stage';

type ResolvedImage = { ref: string; digest: string; config: ImageConfig } | null;

// Base-image lookups, each asked of the resolver once per platform.
export class BaseImages {
  private readonly resolved = new Map<string, Promise<ResolvedImage>>();
  // Images the resolver knew (unknown ones keep their FROM vertex).
  private readonly knownImages = new Set<string>();

  constructor(private readonly resolver: ConvertOptions['resolveImageConfig']) {}

  resolve(ref: string, platform: Platform): Promise<ResolvedImage> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.resolved.get(key);
    if (!p) {
      p = this.resolver(ref, platform);
      // A rejected prefetch must not become an unhandled rejection; dispatch awaits it again.
      p.catch(() => undefined);
      this.resolved.set(key, p);
    }
    return p;
  }

  markKnown(ref: string, platform: Platform): void {
    this.knownImages.add(`${ref}|${formatPlatform(platform)}`);
  }

  known(ref: string, platform: Platform): boolean {
    return this.knownImages.has(`${ref}|${formatPlatform(platform)}`);
  }
}

// Resolution failures name the Dockerfile line, keeping the resolver's hint.
async function resolveAt(cv: Converter, node: Instruction, ref: string, platform: Platform): Promise<ResolvedImage> {
  try {
    return await cv.images.resolve(ref, platform);
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    const err = e as Error & { hint?: string };
    throw new DockerfileError(`failed to resolve source metadata for ${ref}: ${err.message}`, {
      file: cv.file,
      line: node.startLine,
      endLine: node.endLine,
      snippet: node.original,
      hint: err.hint ?? 'check the image name and that the registry is reachable',
      cause: e,
    });
  }
}

// An image as a stage base: its normalized reference, digest and config (an
// unknown image gets an empty config).
async function imageBase(cv: Converter, node: Instruction, base: string, platform: Platform) {
  let refStr: string;
  try {
    refStr = formatReference(parseReference(base));
  } catch (e) {
    throw cv.err(node, `invalid base image reference "${base}": ${(e as Error).message}`, 'use NAME[:TAG][@DIGEST] with a lowercase name');
  }
  const res = await resolveAt(cv, node, refStr, platform);
  let img: ImageConfig;
  let digest: string | undefined;
  if (res) {
    cv.images.markKnown(refStr, platform);
    img = baseImageConfig(res.config);
    digest = res.digest || undefined;
    if (res.ref) {
      try {
        refStr = formatReference(parseReference(res.ref));
      } catch {
        // keep ours
      }
    }
    if (!img.history) img.history = [];
  } else {
    img = emptyImage(platform);
    delete img.config!.WorkingDir;
  }
  return { refStr, digest, img };
}

// "FROM docker.io/library/alpine:3.19@sha256:…" as BuildKit shows a pinned base.
function showRef(refStr: string, digest: string | undefined): string {
  return digest ? `${refStr.replace(/@sha256:[a-f0-9]+$/, '')}@${digest}` : refStr;
}

function imageRef(cv: Converter, refStr: string, digest: string | undefined, platform: Platform): Ref {
  return cv.b.add({ kind: 'image', name: `FROM ${showRef(refStr, digest)}`, inputs: [], platform, ref: refStr, resolvedDigest: digest });
}

// --build-context lookup as BuildKit does it: the name as written, then its
// familiar form without ":latest" (so "alpine" matches FROM docker.io/library/alpine).
function namedContext(cv: Converter, name: string): NamedContext | undefined {
  const all = cv.opts.namedContexts;
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

// ---- FROM ----

export async function dispatchStage(cv: Converter, stage: Stage): Promise<StageState> {
  const from = stage.from;
  const node = from.node;
  const base = cv.expand(node, from.baseName, cv.globalEnv);
  if (base === '') {
    throw cv.err(node, `base name (${from.baseName}) should not be blank`, 'set the ARG used in FROM (--build-arg) or give it a default');
  }
  let platform: Platform | undefined;
  if (from.platform !== undefined) {
    const ps = cv.expand(node, from.platform, cv.globalEnv);
    const p = parsePlatform(ps);
    if (!p) throw cv.err(node, `failed to parse platform ${JSON.stringify(ps)}`, 'use os/arch[/variant], e.g. linux/arm64');
    platform = p;
  }
  const label = cv.singleStage ? '' : stage.name || `stage-${stage.index}`;
  // Only stages defined above can be a base; a later name is an image reference.
  // --build-context <stage name>=... replaces the whole stage.
  const override = stage.name ? namedContext(cv, stage.name) : undefined;
  // The base is looked up as written among the (lower-cased) stage names, so
  // "FROM Builder" is not stage "builder" but an (invalid) image name, as in BuildKit.
  const baseStage = override ? undefined : cv.stages.slice(0, stage.index).find((s) => s.name && s.name === base);
  const named = override ?? (baseStage ? undefined : namedContext(cv, base));

  let st: StageState;
  let triggers: string[] = [];
  // When FROM is a vertex (an image or a named context) it is step 1.
  let fromStep: ((name: string) => Ref) | undefined;
  let fromText = '';

  if (baseStage) {
    const parent = await cv.dispatch(baseStage);
    const img = cloneImage(parent.img);
    // ONBUILD written in the parent stage runs here (once); the config's
    // OnBuild list is not carried over.
    if (img.config) delete img.config.OnBuild;
    triggers = baseStage.commands.filter((c): c is OnbuildCommand => c.keyword === 'ONBUILD').map((c) => c.expression);
    st = newStageState(stage, label, img, parent.ref, platform ?? parent.platform);
    // ARGs the parent declared stay in scope (BuildKit: a stage inherits its
    // base stage's build state): RUN sees them, and its history lists them.
    st.env = new Map(parent.env);
    st.declared = parent.declared.map((d) => ({ ...d }));
    st.workdirSet = parent.workdirSet;
  } else if (base === 'scratch' && !named) {
    // Exactly "scratch": BuildKit compares the name as written ("SCRATCH" is an invalid image name).
    const plat = platform ?? cv.targetPlatform;
    st = newStageState(stage, label, emptyImage(plat), null, plat);
  } else if (named?.kind === 'local') {
    // A directory given with --build-context replaces the image.
    const plat = platform ?? cv.targetPlatform;
    st = newStageState(stage, label, emptyImage(plat), null, plat);
    fromText = `FROM ${base}`;
    fromStep = (name) => cv.b.add({ kind: 'local', name, location: cv.location(node), inputs: [], source: named.ref });
  } else {
    const plat = platform ?? cv.targetPlatform;
    const { refStr, digest, img } = await imageBase(cv, node, named ? named.ref : base, plat);
    // Triggers run once here and are not passed on to images built from this one.
    triggers = img.config?.OnBuild ?? [];
    if (img.config) delete img.config.OnBuild;
    st = newStageState(stage, label, img, null, plat);
    // An image without layers is scratch: no source vertex (BuildKit does the same).
    const layerless = (img.rootfs?.diff_ids ?? []).length === 0 && (img.history ?? []).every((h) => h.empty_layer);
    if (!layerless || !cv.images.known(refStr, plat)) {
      fromText = `FROM ${showRef(refStr, digest)}`;
      fromStep = (name) => cv.b.add({ kind: 'image', name, location: cv.location(node), inputs: [], platform: plat, ref: refStr, resolvedDigest: digest });
    }
    // The FROM still counts in the step total, as in BuildKit.
    st.cmdTotal = 1;
  }

  // ONBUILD triggers run first, as if written right after FROM.
  const triggerCommands = override ? [] : triggers.map((t) => parseTrigger(cv, node, t));
  if (cv.opts.multiPlatform) st.platformLabel = formatPlatform(st.platform);
  // Progress numbering: FROM an image, then RUN/COPY/ADD/WORKDIR and every trigger.
  if (fromStep) st.cmdTotal = 1;
  if (!override) for (const c of stage.commands) if (['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(c.keyword)) st.cmdTotal++;
  st.cmdTotal += triggerCommands.length;
  if (fromStep) st.ref = fromStep(stepName(st, fromText));
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
  for (const c of triggerCommands) await cv.dispatchCommand(st, c);
  st.inTrigger = false;
  for (const c of stage.commands) await cv.dispatchCommand(st, c);
  return st;
}

// A trigger from the base's config, parsed on its own; its errors point at
// the FROM that brought it in.
function parseTrigger(cv: Converter, from: Instruction, trigger: string): StageCommand {
  let parsed: ParsedDockerfile;
  try {
    parsed = parseDockerfile(trigger + '\n', { filename: cv.file });
  } catch (e) {
    throw cv.err(from, `invalid ONBUILD trigger in base image: ${JSON.stringify(trigger)}: ${(e as Error).message}`);
  }
  const t = commandsOf(parsed, { file: cv.file })[0];
  if (!t) throw cv.err(from, `invalid ONBUILD trigger in base image: ${JSON.stringify(trigger)}`);
  if (t.keyword === 'ONBUILD' || t.keyword === 'FROM' || t.keyword === 'MAINTAINER') {
    throw cv.err(from, `${t.keyword} isn't allowed as an ONBUILD trigger (from the base image)`);
  }
  return { ...t, node: { ...t.node, startLine: from.startLine, endLine: from.endLine } };
}

// ---- references to other stages ----

// The stage names and images a stage's commands read from (unexpanded).
function fromRefs(commands: StageCommand[]): { cmd: StageCommand; from: string; kind: 'from' | 'mount' }[] {
  const out: { cmd: StageCommand; from: string; kind: 'from' | 'mount' }[] = [];
  for (const cmd of commands) {
    if (cmd.keyword === 'COPY' && cmd.from !== undefined) out.push({ cmd, from: cmd.from, kind: 'from' });
    if (cmd.keyword === 'RUN') {
      for (const m of cmd.mounts) {
        const from = mountField(m, 'from');
        if (from !== undefined) out.push({ cmd, from, kind: 'mount' });
      }
    }
  }
  return out;
}

// Best-effort: start resolving the images of every stage reachable from
// `target` (errors surface later, with line numbers, in dispatch).
export function prefetch(cv: Converter, target: Stage): void {
  const seen = new Set<Stage>();
  const visit = (s: Stage): void => {
    if (seen.has(s)) return;
    seen.add(s);
    try {
      const base = cv.expand(s.from.node, s.from.baseName, cv.globalEnv);
      const earlier = cv.stages.slice(0, s.index).find((x) => x.name && x.name === base);
      let platform = cv.targetPlatform;
      if (s.from.platform !== undefined) platform = parsePlatform(cv.expand(s.from.node, s.from.platform, cv.globalEnv)) ?? platform;
      if (s.name && namedContext(cv, s.name)) return;
      if (earlier) visit(earlier);
      else if (base !== 'scratch' && !namedContext(cv, base)) {
        void cv.images.resolve(formatReference(parseReference(base)), platform);
      }
    } catch {
      // reported by dispatch
    }
    for (const { from } of fromRefs(s.commands)) {
      const dep = lookupStage(cv, from, s);
      if (dep) visit(dep);
      else if (!/^[0-9]+$/.test(from) && !from.includes('$') && !namedContext(cv, from) && !stageByRef(cv, from, 'mount')) {
        // COPY --from=<image>: resolve it with the others.
        try {
          void cv.images.resolve(formatReference(parseReference(from)), cv.targetPlatform);
        } catch {
          // reported by dispatch
        }
      }
    }
  };
  visit(target);
}

// Checks BuildKit makes on every stage, used or not: no variables in
// --from, stage indexes in range, then no cycle among the stages that
// COPY --from / RUN --mount from= read (a stage copying from itself included).
export function checkStageRefs(cv: Converter): void {
  const deps = new Map<Stage, { stage: Stage; node: Instruction }[]>();
  for (const s of cv.stages) {
    const list: { stage: Stage; node: Instruction }[] = [];
    for (const { cmd, from, kind } of fromRefs(s.commands)) {
      checkStageRef(cv, cmd.node, s, from, kind, false);
      const dep = stageByRef(cv, from, kind);
      if (dep) list.push({ stage: dep, node: cmd.node });
    }
    deps.set(s, list);
  }
  checkCycles(cv, deps);
}

// BuildKit's validateCircularDependency: a depth-first walk from each stage in
// file order (FROM <stage> is not an edge); the error names the stage the walk
// started from, "stage-N" when it has no name, and points at the first command
// on the cycle's path.
function checkCycles(cv: Converter, deps: Map<Stage, { stage: Stage; node: Instruction }[]>): void {
  const visited = new Set<Stage>();
  const onPath = new Set<Stage>();
  const visit = (s: Stage, path: Instruction[]): Instruction[] | null => {
    if (visited.has(s)) return null;
    visited.add(s);
    onPath.add(s);
    for (const d of deps.get(s) ?? []) {
      const next = [...path, d.node];
      if (onPath.has(d.stage)) return next;
      const found = visit(d.stage, next);
      if (found) return found;
    }
    onPath.delete(s);
    return null;
  };
  for (const s of cv.stages) {
    const path = visit(s, []);
    if (path) {
      throw cv.err(path[0], `circular dependency detected on stage: ${s.name || `stage-${s.index}`}`, 'a stage cannot use its own result, directly or through the stages it copies from');
    }
  }
}

function checkStageRef(cv: Converter, node: Instruction, cur: Stage, from: string, kind: 'from' | 'mount', self = true): void {
  if (kind === 'mount' && /\$./.test(from)) {
    throw cv.err(node, "'from' doesn't support variable expansion, define alias stage instead", 'ARG X=... before the first FROM, then FROM ${X} AS alias, and from=alias');
  }
  if (kind === 'from' && /\$/.test(from) && expandWord(from, new Map(), { escapeToken: cv.esc }).value !== from) {
    throw cv.err(
      node,
      'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
      `ARG X=...  (before the first FROM), then FROM \${X} AS src, and ${node.keyword} --from=src`,
    );
  }
  if (/^[0-9]+$/.test(from) && kind === 'from') {
    const i = Number(from);
    if (i >= cv.stages.length) {
      throw cv.err(node, `invalid stage index ${i}`, `the Dockerfile has stages 0 to ${cv.stages.length - 1}`);
    }
  }
  // (An ONBUILD trigger's reference is checked here when it runs; the file's own are in checkCycles.)
  if (self && stageByRef(cv, from, kind) === cur) {
    throw cv.err(node, `circular dependency detected on stage: ${cur.name || `stage-${cur.index}`}`, 'a stage cannot use its own result');
  }
}

// The stage a --from / from= value names (any position), if any.
function stageByRef(cv: Converter, from: string, kind: 'from' | 'mount'): Stage | undefined {
  if (kind === 'from' && /^[0-9]+$/.test(from)) return cv.stages[Number(from)];
  return cv.stages.find((s) => s.name && s.name === from.toLowerCase());
}

// The earlier stage a --from / from= value names, if any.
function lookupStage(cv: Converter, from: string, cur: Stage): Stage | undefined {
  if (/^[0-9]+$/.test(from)) {
    const i = Number(from);
    return i < cur.index ? cv.stages[i] : undefined;
  }
  const s = cv.stages.find((x) => x.name && x.name === from.toLowerCase());
  return s && s.index < cur.index ? s : undefined;
}

// What --from / from= names: an earlier stage (converted first), or a source vertex.
export type Source = { kind: 'stage'; st: StageState } | { kind: 'ref'; ref: Ref; name: string };

// --from=<stage name | index | named context | image>; mountTarget: the
// target of a RUN --mount as written, for BuildKit's message about a later stage.
export async function source(cv: Converter, st: StageState, node: Instruction, from: string, kind: 'from' | 'mount', mountTarget = ''): Promise<Source> {
  checkStageRef(cv, node, st.stage, from, kind);
  const dep = stageByRef(cv, from, kind);
  if (dep && dep.index > st.stage.index && kind === 'mount') {
    throw cv.err(
      node,
      `cannot mount from stage "${from}" to "${mountTarget}", stage needs to be defined before current command`,
      `stage "${dep.name}" starts on line ${dep.from.node.startLine}; move it above line ${st.stage.from.node.startLine}`,
    );
  }
  if (dep && dep.index > st.stage.index) {
    throw cv.err(
      node,
      `cannot copy from stage "${from}", it needs to be defined before current stage "${st.label || st.stage.name || `stage-${st.stage.index}`}"`,
      `stage "${dep.name || dep.index}" starts on line ${dep.from.node.startLine}; move it above line ${st.stage.from.node.startLine}`,
    );
  }
  if (dep) return { kind: 'stage', st: await cv.dispatch(dep) };
  const nc = namedContext(cv, from);
  if (nc) {
    if (nc.kind === 'local') {
      return { kind: 'ref', name: from, ref: cv.b.add({ kind: 'local', name: `[context ${from}] load from client`, inputs: [], source: nc.ref }) };
    }
    const { refStr, digest } = await imageBase(cv, node, nc.ref, cv.targetPlatform);
    return { kind: 'ref', name: from, ref: imageRef(cv, refStr, digest, cv.targetPlatform) };
  }
  let refStr: string;
  try {
    refStr = formatReference(parseReference(from));
  } catch (e) {
    throw cv.err(node, `invalid --${kind} value "${from}": not a stage name, stage index or image reference (${(e as Error).message})`, 'name an earlier stage (FROM ... AS name) or an image like busybox:latest');
  }
  // Like BuildKit, an image named in --from is for the target platform,
  // whatever platform the copying stage runs on.
  const res = await resolveAt(cv, node, refStr, cv.targetPlatform);
  return { kind: 'ref', name: from, ref: imageRef(cv, refStr, res?.digest || undefined, cv.targetPlatform) };
}
