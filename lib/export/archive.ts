// `-o type=docker` and `-o type=oci`: the build's image (made once, see
// imageTargetOf) as a `docker load` archive or an OCI layout tar, named by the
// -t names; a multi-platform build's index goes in whole, with every platform.
import type { Writable } from 'node:stream';
import { writeDockerArchive } from './docker-archive';
import { fetchLayers, imageTargetOf } from './image';
import { writeOciArchive } from './oci-layout';
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
  const built = await imageTargetOf(results, env, progress, imageFormat);
  for (const img of built.images) await fetchLayers(img, env, progress);
  const images = (names.length ? names : [undefined]).map((name) => ({ name, target: built.target }));
  progress?.status('send', { name: 'sending tarball' });
  await (format === 'docker' ? writeDockerArchive(env.content, images, out) : writeOciArchive(env.content, images, out));
  progress?.status('send', { name: 'sending tarball', done: true });
}
