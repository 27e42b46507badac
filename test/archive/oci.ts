// A minimal OCI image layout around layer blobs, for real readers (umoci, skopeo).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LayoutLayer {
  file: string; // blob file to copy in
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

function putBlob(dir: string, data: Buffer | string): { digest: string; size: number } {
  const b = Buffer.from(data);
  const hex = createHash('sha256').update(b).digest('hex');
  fs.writeFileSync(path.join(dir, 'blobs/sha256', hex), b);
  return { digest: `sha256:${hex}`, size: b.length };
}

/** Write an OCI layout at `dir` with one image tagged `tag` holding `layers` (bottom first). */
export function writeOciLayout(dir: string, layers: LayoutLayer[], tag = 'latest'): void {
  fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const l of layers) {
    const dst = path.join(dir, 'blobs/sha256', l.digest.slice(7));
    if (!fs.existsSync(dst)) fs.copyFileSync(l.file, dst);
  }
  const config = putBlob(
    dir,
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created_by: 'img test' })),
    }),
  );
  const manifest = putBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
}
