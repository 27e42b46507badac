// `img build` orchestration: context → Dockerfile → graph (frontend) → solve
// (solver on the runtime) → outputs (exporters), with one progress stream.
// The CLI command only parses flags into BuildOptions and calls runBuild.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import type { BuildGraph, LocalSourceVertex } from '../graph/types';
import { ContentStore } from '../content/store';
import { ImageStore } from '../images/store';
import type { Descriptor, ImageConfig, Platform } from '../images/types';
import { createRenderer, Progress, type Renderer } from '../progress/index';
import { ImgError } from '../util/errors';
import { warn } from '../util/log';
import type { BuildOptions, OutputSpec } from './options';

export interface BuildIO {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stdin: NodeJS.ReadableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface BuildOutcome {
  imageId: string | null; // config digest when an image was made
  manifest?: Descriptor;
  names: string[];
  cachedSteps: number;
  executedSteps: number;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

export async function runBuild(opts: BuildOptions, io: BuildIO): Promise<BuildOutcome> {
  const { hostPlatform, normalizePlatform, formatPlatform } = await import('../images/platform');
  const host = hostPlatform();
  for (const p of opts.platforms) {
    if (!samePlatform(normalizePlatform(p), normalizePlatform(host))) {
      throw new ImgError(`building for ${formatPlatform(p)} is not supported yet (this host is ${formatPlatform(host)})`, {
        hint: `drop --platform, or pass --platform ${formatPlatform(host)}`,
      });
    }
  }
  const platform = host;
  const outputs: OutputSpec[] = opts.outputs.length ? opts.outputs : [{ type: 'image', names: opts.tags }];
  const stdoutData = outputs.some((o) => (o.type === 'tar' || o.type === 'docker' || o.type === 'oci') && !o.dest);
  if (stdoutData && io.stdout.isTTY) {
    throw new ImgError('refusing to write a tar archive to a terminal', { hint: 'redirect stdout to a file, or pass dest=FILE in --output' });
  }

  const { loadContext } = await import('./context');
  const ctx = await loadContext({ context: opts.context, file: opts.file, stdin: io.stdin as never, cwd: io.cwd, tmpDir: path.join(opts.stateDir, 'tmp') });
  const progress = new Progress();
  const renderer: Renderer = opts.quiet ? createRenderer('quiet') : createRenderer(opts.progress, io.stderr, { noConsole: opts.noConsole });
  progress.on((e) => renderer.write(e));
  let ok = false;
  try {
    const result = await buildWithContext(opts, io, ctx, progress, platform, outputs);
    ok = true;
    return result;
  } catch (err) {
    // Quiet builds still show why a step failed: its command's last output lines.
    const tail = (err as { tail?: string[]; vertexName?: string }).tail;
    if (opts.quiet && tail?.length) io.stderr.write(`------\n > ${(err as { vertexName: string }).vertexName}:\n${tail.join('\n')}\n------\n`);
    throw err;
  } finally {
    await renderer.close(ok);
    await ctx.cleanup();
  }
}

async function buildWithContext(
  opts: BuildOptions,
  io: BuildIO,
  ctx: import('./context').LoadedContext,
  progress: Progress,
  platform: Platform,
  outputs: OutputSpec[],
): Promise<BuildOutcome> {
  const { parseDockerignore, PatternMatcher } = await import('../frontend/dockerfile/dockerignore');
  const { dockerfileToGraph } = await import('../frontend/dockerfile/convert');
  const { openSnapshotter } = await import('../snapshot/index');
  const { CacheStore } = await import('../solver/cache');
  const { createRuntime } = await import('../solver/runtime');
  const { solve } = await import('../solver/scheduler');
  const { withStoreLock } = await import('../state/lock');

  // The Dockerfile and .dockerignore, shown as BuildKit's internal steps.
  await progress.vertex('internal:dockerfile', `[internal] load build definition from ${ctx.dockerfileName}`, async () => {
    progress.status('internal:dockerfile', 'transfer', { name: `transferring dockerfile: ${Buffer.byteLength(ctx.dockerfileText)}B`, done: true });
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
        throw new ImgError(`--build-context ${bc.name}=${bc.path}: not a directory`, { hint: 'pass an existing directory' });
      }
      namedContexts[bc.name] = { kind: 'local', ref: abs };
      localDirs[abs] = abs;
      localDirs[bc.name] = abs;
    }
  }

  const sn = opts.probe
    ? await (await import('./probe')).probeSnapshotter(opts.stateDir, opts.backend)
    : await openSnapshotter(opts.stateDir, opts.backend);
  const content = new ContentStore(opts.stateDir);
  const { acquireLease } = await import('../snapshot/lease');
  const { lockFile } = await import('../host/index');
  const cache = new CacheStore(opts.stateDir, {
    // Lease before checking: a concurrent prune then cannot remove what we reuse.
    snapshotExists: async (id) => {
      await acquireLease(opts.stateDir, sn.backend, id);
      const info = await sn.get(id);
      return info !== null && info.kind === 'committed';
    },
    blobExists: (d) => content.has(d as `sha256:${string}`),
    lockFile,
  });
  const matchers = new Map<string, InstanceType<typeof PatternMatcher>>();
  const runtime = createRuntime({
    stateDir: opts.stateDir,
    sn,
    cache,
    platform,
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
  });

  return withStoreLock(opts.stateDir, 'shared', async () => {
    const graph: BuildGraph = await dockerfileToGraph(ctx.dockerfileText, {
      filename: ctx.dockerfileName,
      buildArgs: opts.buildArgs,
      target: opts.target,
      targetPlatform: platform,
      buildPlatform: platform,
      labels: opts.labels,
      // --no-cache is the solver's business: vertex ids (and so cache keys) stay
      // the same, so a --no-cache build refreshes the cache the next build uses.
      noCache: false,
      dockerignore: ignore,
      namedContexts,
      sourceDateEpoch: opts.sourceDateEpoch,
      resolveImageConfig: (ref, plat) => {
        const id = `internal:metadata:${ref}`;
        // Pulls of missing base images show their blobs under this step.
        const logger = { log() {}, status: (sub: string, s: { name: string; current?: number; total?: number; done?: boolean }) => progress.status(id, sub, s) };
        return progress.vertex(id, `[internal] load metadata for ${ref}`, () => runtime.resolveImageConfig(ref, plat, logger));
      },
    });

    const res = await solve(graph, {
      executors: runtime.executors,
      cache,
      concurrency: opts.concurrency,
      progress,
      noCache: opts.noCache,
    });

    const outcome: BuildOutcome = { imageId: null, names: [], cachedSteps: res.cached.size, executedSteps: res.executed.size };
    const { buildImage, nameImage } = await import('../export/image');
    let built: Awaited<ReturnType<typeof buildImage>> | null = null;
    const ensureImage = async (vid: string) => {
      if (!built) {
        built = await buildImage({
          content,
          sn,
          cache,
          layers: res.result.layers,
          config: graph.config as ImageConfig,
          created: res.result.created,
          progress: { status: (sub, s) => progress.status(vid, sub, s) },
          sourceDateEpoch: opts.sourceDateEpoch,
        });
        outcome.imageId = built.config.digest;
        outcome.manifest = built.manifest;
      }
      return built;
    };

    for (const out of outputs) {
      switch (out.type) {
        case 'image': {
          await progress.vertex('export:image', 'exporting to image', async () => {
            const b = await ensureImage('export:image');
            outcome.names.push(...(await nameImage(new ImageStore(opts.stateDir), out.names, b.manifest, { status: (sub, s) => progress.status('export:image', sub, s) })));
          });
          break;
        }
        case 'docker':
        case 'oci': {
          const id = `export:${out.type}`;
          await progress.vertex(id, out.type === 'docker' ? 'exporting to docker image format' : 'exporting to oci image format', async () => {
            const b = await ensureImage(id);
            const { writeDockerArchive } = await import('../export/docker-archive');
            const { writeOciArchive } = await import('../export/oci-layout');
            const images = (out.names.length ? out.names : [undefined]).map((name) => ({ name, target: b.manifest }));
            progress.status(id, 'send', { name: 'sending tarball' });
            await toDest(out.dest, io, (w) => (out.type === 'docker' ? writeDockerArchive(content, images, w) : writeOciArchive(content, images, w)));
            progress.status(id, 'send', { name: 'sending tarball', done: true });
          });
          break;
        }
        case 'tar': {
          await progress.vertex('export:tar', 'exporting to client', async () => {
            const { writeRootfsTar } = await import('../export/rootfs-tar');
            progress.status('export:tar', 'send', { name: 'sending tarball' });
            await toDest(out.dest, io, (w) => writeRootfsTar(sn, res.result.snapshot, w, { sourceDateEpoch: opts.sourceDateEpoch }));
            progress.status('export:tar', 'send', { name: 'sending tarball', done: true });
          });
          break;
        }
        case 'local': {
          await progress.vertex('export:local', 'exporting to client directory', async () => {
            const { exportLocal } = await import('../export/local');
            progress.status('export:local', 'copy', { name: 'copying files' });
            await exportLocal(sn, res.result.snapshot, path.resolve(io.cwd, out.dest));
            progress.status('export:local', 'copy', { name: 'copying files', done: true });
          });
          break;
        }
      }
    }

    // --iidfile / --metadata-file want an image even when the outputs made none.
    if ((opts.iidfile || opts.metadataFile) && !built) await ensureImage('export:meta');
    const b = built as Awaited<ReturnType<typeof buildImage>> | null;
    if (opts.iidfile && b) await fsp.writeFile(path.resolve(io.cwd, opts.iidfile), b.config.digest);
    if (opts.metadataFile && b) {
      const meta: Record<string, unknown> = {
        'containerimage.config.digest': b.config.digest,
        'containerimage.digest': b.manifest.digest,
        'containerimage.descriptor': b.manifest,
      };
      if (outcome.names.length) meta['image.name'] = outcome.names.join(',');
      await fsp.writeFile(path.resolve(io.cwd, opts.metadataFile), JSON.stringify(meta, null, 2) + '\n');
    }
    for (const w of graph.warnings) warn(w.line ? `${ctx.dockerfileName}:${w.line}: ${w.message}` : w.message);
    return outcome;
  });
}

async function toDest(dest: string | undefined, io: BuildIO, write: (w: Writable) => Promise<void>): Promise<void> {
  if (!dest) {
    // Hand stdout over without closing it (more output may follow on stderr only).
    const { PassThrough } = await import('node:stream');
    const pt = new PassThrough();
    pt.pipe(io.stdout, { end: false });
    const done = new Promise<void>((resolve, reject) => {
      pt.on('end', resolve);
      pt.on('error', reject);
    });
    await write(pt);
    await done;
    return;
  }
  const file = path.resolve(io.cwd, dest);
  const tmp = `${file}.${process.pid}.tmp`;
  const out = fs.createWriteStream(tmp, { mode: 0o644 });
  try {
    await write(out);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}
