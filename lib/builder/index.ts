// `img build` orchestration: context → Dockerfile → graph (frontend) → solve
// (solver on the runtime) → outputs (exporters), with one progress stream.
// The CLI command only parses flags into BuildOptions and calls runBuild.
// Several --platform values make one graph per platform, solved together in one
// scheduler run (work they share, equal vertices, runs once) and exported as one
// index (images) or one directory per platform (local, tar).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { ContentStore } from '../content/store';
import { exportArchive, exportImage, exportLayoutDir, exportLocal, imageTargetOf, LayerBlobMemo, writeRootfsTar, type BuildResults, type ExportEnv, type ExportProgress, type ImageFormat } from '../export/index';
import { pushTarget } from '../registry/push';
import { convertDockerfile } from '../frontend/dockerfile/convert';
import type { ParsedDockerfile } from '../frontend/dockerfile/ast';
import { parseDockerfile } from '../frontend/dockerfile/parser';
import { DockerfileError } from '../frontend/dockerfile/errors';
import { lintShort, RULES } from '../frontend/dockerfile/lint';
import { parseDockerignore, PatternMatcher } from '../frontend/dockerfile/dockerignore';
import type { BuildGraph, LocalSourceVertex } from '../graph/types';
import { lockFile } from '../host/index';
import { formatPlatform, hostPlatform } from '../images/platform';
import type { Descriptor, ImageConfig, Platform } from '../images/types';
import { checkReport, createRenderer, failureBlock, Progress, sourceContext, warningSummary, type BuildWarning, type Renderer } from '../progress/index';
import { openSnapshotter } from '../snapshot/index';
import { acquireLease } from '../snapshot/lease';
import { INLINE_CACHE_FIELD } from '../cache/index';
import { CacheStore, CacheWithImports } from '../solver/cache';
import type { CacheBackend } from '../solver/types';
import { createRuntime } from '../solver/runtime';
import { SolveError, solveRoots } from '../solver/scheduler';
import { withStoreLock } from '../state/lock';
import { findError, NotFoundError, UsageError } from '../util/errors';
import { isDebug, warn } from '../util/log';
import { exportCaches, importCaches, inlineCache, type CacheExportContext } from './cache';
import { loadContext, type LoadedContext } from './context';
import { checkDestinations, toDest, writeDestFile } from './dest';
import { EarlyLayers, layerSteps } from './early-layers';
import type { BuildOptions, OutputSpec } from './options';

export interface BuildIO {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stdin: NodeJS.ReadableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface BuildOutcome {
  imageId: string | null; // config digest when an image was made (the index digest, multi-platform)
  manifest?: Descriptor;
  names: string[];
  pushed: { name: string; digest: string }[]; // names pushed by -o type=registry / push=true
  written: string[]; // what the other outputs wrote: "files in out/", "docker archive app.tar", "rootfs tar on stdout"
  warnings: BuildWarning[]; // build checks and other warnings about the Dockerfile
  cachedSteps: number;
  executedSteps: number;
}

export async function runBuild(opts: BuildOptions, io: BuildIO): Promise<BuildOutcome> {
  const outputs: OutputSpec[] = opts.outputs.length ? opts.outputs : [{ type: 'image', names: opts.tags, push: false, store: true, format: {} }];
  const stdoutData = outputs.some((o) => (o.type === 'tar' || o.type === 'docker' || o.type === 'oci') && !o.dest);
  if (stdoutData && io.stdout.isTTY) {
    throw new UsageError('refusing to write a tar archive to a terminal', { hint: 'redirect stdout to a file, or pass dest=FILE in --output' });
  }
  await checkDestinations(opts, outputs, io.cwd);

  const ctx = await loadContext({ context: opts.context, file: opts.file, stdin: io.stdin as never, cwd: io.cwd, tmpDir: path.join(opts.stateDir, 'tmp') });
  const progress = new Progress();
  const renderer: Renderer = opts.quiet ? createRenderer('quiet') : createRenderer(opts.progress, io.stderr, { noConsole: opts.noConsole });
  progress.on((e) => renderer.write(e));
  let closed = false;
  try {
    const result = await buildWithContext(opts, io, ctx, progress, outputs);
    closed = true;
    await renderer.close(true);
    if (opts.check) io.stdout.write(checkReport(result.warnings));
    // The warnings again, together, after the progress (buildx's summary).
    else if (!opts.quiet && opts.progress !== 'rawjson') io.stderr.write(warningSummary(result.warnings, { debug: isDebug(), color: Boolean(io.stderr.isTTY) }));
    return result;
  } catch (err) {
    closed = true;
    await renderer.close(false);
    // `# check=error=true`: the warnings that failed the build come first.
    const checks = findError(err, DockerfileError)?.warnings;
    if (checks && opts.check) io.stdout.write(checkReport(buildWarnings(checks, ctx)));
    const failed = findError(err, SolveError);
    if (failed) {
      // Quiet builds still show why a step failed: its command's last output lines.
      if (opts.quiet) io.stderr.write(failureBlock(failed.vertexName, failed.tail));
      // Then the Dockerfile lines it comes from; the CLI prints the error itself last.
      if (failed.location) io.stderr.write(sourceContext(ctx.dockerfileName, ctx.dockerfileText, failed.location));
    } else {
      // A Dockerfile error shows its lines too, as BuildKit's; not `error=true`'s,
      // which is about the warnings shown above it.
      const bad = findError(err, DockerfileError);
      if (bad && !bad.warnings && bad.file === ctx.dockerfileName) {
        io.stderr.write(sourceContext(ctx.dockerfileName, ctx.dockerfileText, [{ start: bad.line, end: bad.endLine ?? bad.line }]));
      }
    }
    throw err;
  } finally {
    if (!closed) await renderer.close(false);
    await ctx.cleanup();
  }
}

async function buildWithContext(
  opts: BuildOptions,
  io: BuildIO,
  ctx: LoadedContext,
  progress: Progress,
  outputs: OutputSpec[],
): Promise<BuildOutcome> {
  // RUN executes on the build platform (the host); the images are for the targets.
  const host = hostPlatform();
  const targets = targetPlatforms(opts.platforms, host);
  const multiPlatform = targets.length > 1 || isTrue(opts.buildArgs.BUILDKIT_MULTI_PLATFORM);
  // The Dockerfile and .dockerignore, shown as BuildKit's internal steps.
  const showWarnings = warningEmitter(progress);
  const definition = await progress.vertex('internal:dockerfile', `[internal] load build definition from ${ctx.dockerfileName}`, async () => {
    progress.status('internal:dockerfile', 'transfer', { name: `transferring dockerfile: ${Buffer.byteLength(ctx.dockerfileText)}B`, done: true });
    // Parsed here, so the checks that need only the file show under this step
    // before its DONE, as BuildKit's; a parse error fails the build (below), not this step.
    try {
      const parsed = parseDockerfile(ctx.dockerfileText, { filename: ctx.dockerfileName });
      showWarnings(buildWarnings(parsed.warnings, ctx));
      return { parsed, error: null };
    } catch (error) {
      return { parsed: null, error };
    }
  });
  let ignore: string[] = [];
  if (ctx.dir) {
    await progress.vertex('internal:dockerignore', '[internal] load .dockerignore', async () => {
      ignore = ctx.dockerignoreText ? parseDockerignore(ctx.dockerignoreText) : [];
      progress.status('internal:dockerignore', 'transfer', { name: `transferring context: ${Buffer.byteLength(ctx.dockerignoreText ?? '')}B`, done: true });
    });
  }

  const localDirs: Record<string, string> = {};
  if (ctx.dir) localDirs.context = ctx.dir;
  const namedContexts: Record<string, { kind: 'local' | 'image'; ref: string }> = {};
  for (const bc of opts.buildContexts) {
    if (bc.kind === 'image') namedContexts[bc.name] = { kind: 'image', ref: bc.ref };
    else {
      const abs = path.resolve(io.cwd, bc.path);
      if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
        throw new NotFoundError(`--build-context ${bc.name}=${bc.path}: not a directory`, { hint: 'pass an existing directory' });
      }
      namedContexts[bc.name] = { kind: 'local', ref: abs };
      localDirs[abs] = abs;
      localDirs[bc.name] = abs;
    }
  }

  const sn = await openSnapshotter(opts.stateDir, opts.backend);
  const content = new ContentStore(opts.stateDir);
  const blobExists = (d: string) => content.has(d as `sha256:${string}`);
  const layerBlobs = new LayerBlobMemo(opts.stateDir, { blobExists });
  const cache = new CacheStore(opts.stateDir, {
    // Lease before checking: a concurrent prune then cannot remove what we reuse.
    snapshotExists: async (id) => {
      await acquireLease(opts.stateDir, sn.backend, id);
      const info = await sn.get(id);
      return info !== null && info.kind === 'committed';
    },
    blobExists,
    lockFile,
    layerBlob: (snapshot) => layerBlobs.get(snapshot),
  });
  const matchers = new Map<string, InstanceType<typeof PatternMatcher>>();
  const runtime = createRuntime({
    stateDir: opts.stateDir,
    sn,
    cache,
    platform: host,
    localDirs,
    selectorFor: (_source: string, v: LocalSourceVertex) => {
      const pats = v.excludePatterns ?? [];
      if (pats.length === 0) return { excluded: () => false, mayReinclude: () => false };
      const k = pats.join('\n');
      let m = matchers.get(k);
      if (!m) matchers.set(k, (m = new PatternMatcher(pats)));
      const mm = m;
      return { excluded: (rel: string) => mm.matches(rel), mayReinclude: () => mm.exclusions() };
    },
    secrets: opts.secrets,
    ssh: opts.ssh,
    network: opts.network,
    extraHosts: opts.addHosts,
    pull: opts.pull,
    sourceDateEpoch: opts.sourceDateEpoch,
    env: io.env,
    shmSize: opts.shmSize,
    rlimits: opts.rlimits,
  });

  return withStoreLock(opts.stateDir, 'shared', async () => {
    // --cache-from is read while the frontend resolves base images: both wait on registries.
    const importing = opts.cacheFrom.length && !opts.check ? importCaches(opts.cacheFrom, { stateDir: opts.stateDir, sn, progress }) : null;
    importing?.catch(() => undefined); // awaited below; an early frontend error must not leave it unhandled
    const graphs: BuildGraph[] = await convertAll().catch((err: unknown) => {
      // `# check=error=true` failed the conversion: show what it found first.
      const checks = findError(err, DockerfileError)?.warnings;
      if (checks) showWarnings(buildWarnings(checks, ctx));
      throw err;
    });
    // The platforms' graphs come from one Dockerfile: their warnings are the same.
    const warnings = buildWarnings(graphs[0].warnings, ctx);
    showWarnings(warnings);
    if (opts.check) return { imageId: null, names: [], pushed: [], written: [], warnings, cachedSteps: 0, executedSteps: 0 };
    checkEntitlements(graphs, opts, ctx);
    return solveAndExport(graphs, warnings, importing);
  });

  function convertAll(): Promise<BuildGraph[]> {
    const parsed: ParsedDockerfile | null = definition.parsed;
    if (!parsed) return Promise.reject(definition.error);
    return Promise.all(
      targets.map((target) =>
        convertDockerfile(parsed, {
          filename: ctx.dockerfileName,
          buildArgs: opts.buildArgs,
          target: opts.target,
          targetPlatform: target,
          buildPlatform: host,
          multiPlatform,
          labels: opts.labels,
          // --no-cache is the solver's business: vertex ids (and so cache keys) stay
          // the same, so a --no-cache build refreshes the cache the next build uses.
          noCache: false,
          noCacheStages: opts.noCacheFilter,
          allStages: opts.check,
          dockerignore: ignore,
          namedContexts,
          sourceDateEpoch: opts.sourceDateEpoch,
          resolveImageConfig: (ref, plat) => {
            const shown = multiPlatform ? `[${formatPlatform(plat)} internal]` : '[internal]';
            const id = `internal:metadata:${ref}:${formatPlatform(plat)}`;
            // Pulls of missing base images show their blobs under this step.
            const logger = { log() {}, status: (sub: string, s: { name: string; current?: number; total?: number; done?: boolean }) => progress.status(id, sub, s) };
            return progress.vertex(id, `${shown} load metadata for ${ref}`, () => runtime.resolveImageConfig(ref, plat, logger));
          },
        }),
      ),
    );
  }

  async function solveAndExport(graphs: BuildGraph[], warnings: BuildWarning[], importing: ReturnType<typeof importCaches> | null): Promise<BuildOutcome> {
    // --cache-from: consulted after the local records; their layers stay remote
    // until a step that runs builds on them (see solver/cache.ts CacheWithImports).
    const imports = await importing;
    const backend: CacheBackend = imports?.loaded.length ? new CacheWithImports(cache, imports) : cache;
    // One vertex table: the platforms' graphs name shared work by the same id.
    const vertices: BuildGraph['vertices'] = Object.assign({}, ...graphs.map((g) => g.vertices));
    const roots = graphs.map((g) => g.root);
    const env: ExportEnv = { stateDir: opts.stateDir, content, sn, layerBlobs, sourceDateEpoch: opts.sourceDateEpoch };
    const imageOutput = outputs.find((o) => o.type === 'image' || o.type === 'docker' || o.type === 'oci') as { format: ImageFormat } | undefined;
    // The image's layers are made as their steps finish (early-layers.ts); the store lock
    // is let go only once none is still being written.
    const early = imageOutput ? new EarlyLayers(env, imageOutput.format, layerSteps(vertices, roots)) : null;
    try {
      const res = await solveRoots(vertices, roots, {
        executors: early ? early.wrap(runtime.executors) : runtime.executors,
        cache: backend,
        concurrency: opts.concurrency,
        progress,
        noCache: opts.noCache,
        // Filesystem outputs read the roots' snapshots; image outputs need only their layers.
        materializeRoot: outputs.some((o) => o.type === 'tar' || o.type === 'local'),
      });

      const outcome: BuildOutcome = { imageId: null, names: [], pushed: [], written: [], warnings, cachedSteps: res.cached.size, executedSteps: res.executed.size };
      // The one value every exporter receives.
      const results: BuildResults = {
        multiPlatform,
        platforms: graphs.map((g, i) => {
          const r = res.roots[i].result;
          return { platform: targets[i], result: { snapshot: r.snapshot, layers: r.layers, config: g.config as ImageConfig, created: r.created } };
        }),
      };
      const under = (id: string): ExportProgress => ({ status: (sub, s) => progress.status(id, sub, s) });
      const cacheCtx: CacheExportContext = { graph: { vertices, roots }, solved: res, backend, env, progress };
      if (opts.cacheTo.some((c) => c.type === 'inline')) {
        if (!imageOutput) warn('--cache-to type=inline needs an image output (-t, -o type=image|registry|docker|oci); no inline cache written');
        // The records go into each platform's image config: the records of its own root.
        for (const [i, { result }] of results.platforms.entries()) {
          const own: CacheExportContext = { ...cacheCtx, graph: { vertices, roots: [roots[i]] }, solved: { ...res, roots: [res.roots[i]] } };
          const field = imageOutput ? await inlineCache(own, result, imageOutput.format) : undefined;
          if (field) result.config = { ...result.config, [INLINE_CACHE_FIELD]: field } as ImageConfig;
        }
      }

      for (const out of outputs) {
        switch (out.type) {
          case 'image':
            await progress.vertex('export:image', 'exporting to image', async () => {
              const p = under('export:image');
              if (out.store) outcome.names.push(...(await exportImage(results, env, out.names, p, out.format)));
              if (out.push) {
                const built = await imageTargetOf(results, env, p, out.format);
                for (const name of out.names) {
                  const what = `pushing ${name}`;
                  p.status(`push-${name}`, { name: what });
                  const pushed = await pushTarget(name, built.target, { stateDir: opts.stateDir, insecure: out.insecure, sources: built.sources });
                  p.status(`push-${name}`, { name: `${what}: ${pushed.uploaded} uploaded, ${pushed.mounted} mounted, ${pushed.skipped} present`, done: true });
                  outcome.pushed.push({ name: pushed.name, digest: pushed.digest });
                }
              }
            });
            break;
          case 'docker':
          case 'oci': {
            const id = `export:${out.type}`;
            const format = out.type;
            if (out.layoutDir) {
              await progress.vertex(id, format === 'docker' ? 'exporting to docker image format' : 'exporting to oci image format', () =>
                exportLayoutDir(format, results, env, out.names, path.resolve(io.cwd, out.dest!), under(id), out.format),
              );
              outcome.written.push(`OCI layout ${out.dest}`);
              break;
            }
            await progress.vertex(id, format === 'docker' ? 'exporting to docker image format' : 'exporting to oci image format', () =>
              toDest(out.dest, io, `--output type=${format} dest`, (w) => exportArchive(format, results, env, out.names, w, under(id), out.format)),
            );
            outcome.written.push(`${format === 'docker' ? 'docker' : 'OCI'} archive ${out.dest ?? 'on stdout'}`);
            break;
          }
          case 'tar':
            await progress.vertex('export:tar', 'exporting to client', async () => {
              progress.status('export:tar', 'send', { name: 'sending tarball' });
              await toDest(out.dest, io, '--output type=tar dest', (w) => writeRootfsTar(results, env, w, { platformSplit: out.platformSplit }));
              progress.status('export:tar', 'send', { name: 'sending tarball', done: true });
            });
            outcome.written.push(`rootfs tar ${out.dest ?? 'on stdout'}`);
            break;
          case 'local':
            await progress.vertex('export:local', 'exporting to client directory', async () => {
              progress.status('export:local', 'copy', { name: 'copying files' });
              await exportLocal(results, env, path.resolve(io.cwd, out.dest), { platformSplit: out.platformSplit });
              progress.status('export:local', 'copy', { name: 'copying files', done: true });
            });
            outcome.written.push(`files in ${out.dest}`);
            break;
          case 'cacheonly':
            // Nothing to export: the steps' results are in the build cache (and --cache-to below).
            break;
        }
      }

      await exportCaches(opts.cacheTo, cacheCtx);

      // An image was made when an output wanted one; --iidfile / --metadata-file want one regardless.
      if (imageOutput || opts.iidfile || opts.metadataFile) {
        const b = await imageTargetOf(results, env, under('export:meta'), imageOutput?.format);
        // An index has no config: its id is its own digest (what buildx writes to --iidfile then).
        outcome.imageId = multiPlatform ? b.target.digest : b.images[0].config.digest;
        outcome.manifest = b.target;
        if (opts.iidfile) await writeDestFile(path.resolve(io.cwd, opts.iidfile), '--iidfile', outcome.imageId);
        if (opts.metadataFile) {
          const meta: Record<string, unknown> = {
            ...(multiPlatform ? {} : { 'containerimage.config.digest': outcome.imageId }),
            'containerimage.digest': b.target.digest,
            'containerimage.descriptor': b.target,
          };
          const names = [...new Set([...outcome.names, ...outcome.pushed.map((p) => p.name)])];
          if (names.length) meta['image.name'] = names.join(',');
          await writeDestFile(path.resolve(io.cwd, opts.metadataFile), '--metadata-file', JSON.stringify(meta, null, 2) + '\n');
        }
      }
      return outcome;
    } finally {
      await early?.settled();
    }
  }
}

// BuildKit refuses a build whose steps need an entitlement it was not given, before
// any step runs: RUN --security=insecure needs --allow security.insecure (its text:
// "security.insecure is not allowed"). RUN --network=host needs no grant in img.
function checkEntitlements(graphs: BuildGraph[], opts: BuildOptions, ctx: LoadedContext): void {
  if (opts.allowInsecure) return;
  for (const g of graphs) {
    for (const v of Object.values(g.vertices)) {
      if (v.kind !== 'exec' || v.security !== 'insecure') continue;
      const line = v.location?.[0]?.start;
      throw new UsageError(`security.insecure is not allowed: ${v.name} (${ctx.dockerfileName}${line ? `:${line}` : ''})`, {
        hint: "pass --allow security.insecure to run it with every capability of img's user namespace (never more than this user has on the host)",
      });
    }
  }
}

// A graph's warnings as the progress stream and the summary show them: build
// checks with BuildKit's short line, their rule's description and URL, and the
// Dockerfile lines they are about; other warnings as they are.
function buildWarnings(ws: BuildGraph['warnings'], ctx: LoadedContext): BuildWarning[] {
  return [...ws]
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    .map((w) => {
      const info = w.rule ? RULES[w.rule] : undefined;
      return {
        rule: w.rule,
        message: w.message,
        level: 1,
        short: lintShort(w),
        detail: info ? [info.description] : [],
        url: info?.url,
        source: w.line ? { file: ctx.dockerfileName, text: ctx.dockerfileText, ranges: [{ start: w.line, end: w.endLine ?? w.line }] } : undefined,
      };
    });
}

// Build checks belong to the Dockerfile: they are shown under its loading step,
// each once however often the list is handed over as it grows (the file's own
// checks while it loads, then all of them once the converter has added its own).
function warningEmitter(progress: Progress): (warnings: BuildWarning[]) => void {
  const sent = new Map<string, number>(); // short text → how many with it went out
  return (warnings) => {
    const seen = new Map<string, number>();
    for (const { rule: _rule, message: _message, ...w } of warnings) {
      const n = (seen.get(w.short) ?? 0) + 1;
      seen.set(w.short, n);
      if (n <= (sent.get(w.short) ?? 0)) continue;
      sent.set(w.short, n);
      progress.warn('internal:dockerfile', w);
    }
  };
}

// The platforms to build for, each once, in the order given; the host's when none is.
function targetPlatforms(asked: Platform[], host: Platform): Platform[] {
  if (asked.length === 0) return [host];
  const seen = new Map<string, Platform>();
  for (const p of asked) if (!seen.has(formatPlatform(p))) seen.set(formatPlatform(p), p);
  return [...seen.values()];
}

// BuildKit reads BUILDKIT_MULTI_PLATFORM as Go's strconv.ParseBool.
function isTrue(v: string | undefined): boolean {
  return v !== undefined && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);
}
