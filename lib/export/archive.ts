// `-o type=docker` and `-o type=oci`: the build's image (made once, see
// imageTargetOf) as a `docker load` archive or an OCI layout tar, named by the
// -t names; a multi-platform build's index goes in whole, with every platform.
import type { Writable } from 'node:stream';
import { writeDockerArchive } from './docker-archive';
import { fetchLayers, imageTargetOf } from './image';
import { archiveCreated, writeOciArchive } from './oci-layout';
import { writeLayoutDir } from './layout-dir';
import type { BuildResults, ExportEnv, ExportProgress, ImageFormat } from './result';

export async function exportArchive(
  format: 'docker' | 'oci',
  results: BuildResults,
  env: ExportEnv,
  names: string[],
  out: Writable,
  progress?: ExportProgress,
  imageFormat?: ImageFormat,
): Promise<void> {
  const built = await archiveTarget(format, results, env, progress, imageFormat);
  const images = (names.length ? names : [undefined]).map((name) => ({ name, target: built.target }));
  progress?.status('send', { name: 'sending tarball' });
  // As BuildKit: index.json's entries dated (SOURCE_DATE_EPOCH, else now), no `repositories`.
  const created = archiveCreated(env.sourceDateEpoch);
  await (format === 'docker'
    ? writeDockerArchive(env.content, images, out, { created, repositories: false })
    : writeOciArchive(env.content, images, out, { created }));
  progress?.status('send', { name: 'sending tarball', done: true });
}

// `tar=false`: the same image as an OCI layout directory at `dest` (layout-dir.ts).
export async function exportLayoutDir(
  format: 'docker' | 'oci',
  results: BuildResults,
  env: ExportEnv,
  names: string[],
  dest: string,
  progress?: ExportProgress,
  imageFormat?: ImageFormat,
): Promise<void> {
  const built = await archiveTarget(format, results, env, progress, imageFormat);
  await writeLayoutDir(env.content, built.target, names, dest, { created: archiveCreated(env.sourceDateEpoch) });
}

async function archiveTarget(format: 'docker' | 'oci', results: BuildResults, env: ExportEnv, progress?: ExportProgress, imageFormat?: ImageFormat) {
  // A multi-platform build's index goes in whole, for type=docker too: docker 25+ and
  // containerd load it (manifest.json names the host's platform for older loaders). buildx
  // refuses it on docker's classic store only ("does not currently support exporting
  // manifest lists"); img has no such store to protect.
  const built = await imageTargetOf(results, env, progress, imageFormat);
  for (const img of built.images) await fetchLayers(img, env, progress);
  return built;
}
