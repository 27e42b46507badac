// `-o type=docker` and `-o type=oci`: the build's image (made once, see imageOf)
// as a `docker load` archive or an OCI layout tar, named by the -t names.
import type { Writable } from 'node:stream';
import { writeDockerArchive } from './docker-archive';
import { fetchLayers, imageOf } from './image';
import { writeOciArchive } from './oci-layout';
import type { BuildResult, ExportEnv, ExportProgress, ImageFormat } from './result';

export async function exportArchive(
  format: 'docker' | 'oci',
  result: BuildResult,
  env: ExportEnv,
  names: string[],
  out: Writable,
  progress?: ExportProgress,
  imageFormat?: ImageFormat,
): Promise<void> {
  const built = await imageOf(result, env, progress, imageFormat);
  await fetchLayers(built, env, progress);
  const images = (names.length ? names : [undefined]).map((name) => ({ name, target: built.manifest }));
  progress?.status('send', { name: 'sending tarball' });
  await (format === 'docker' ? writeDockerArchive(env.content, images, out) : writeOciArchive(env.content, images, out));
  progress?.status('send', { name: 'sending tarball', done: true });
}
