// Content store and exporter throughput, plus reference parsing speed.
//   node --import tsx bench/store.ts [sizeMiB=256]
// Baselines: `sha256sum` of the same bytes (hashing alone) and a plain file copy.
import Benchmark from 'benchmark';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ContentStore } from '../lib/content/store';
import { writeDockerArchive } from '../lib/export/docker-archive';
import { writeOciArchive } from '../lib/export/oci-layout';
import { parseReference } from '../lib/images/reference';
import { ImageStore } from '../lib/images/store';
import { MediaType, type Digest } from '../lib/images/types';

const MiB = 1 << 20;

async function timed(label: string, bytes: number, fn: () => Promise<unknown>): Promise<void> {
  const t = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`${label.padEnd(44)} ${(s * 1000).toFixed(0).padStart(6)} ms  ${(bytes / MiB / s).toFixed(0).padStart(5)} MiB/s`);
}

const devNull = () => new Writable({ write: (_c, _e, cb) => cb() });

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 256);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-bench-store-'));
  try {
    const src = path.join(dir, 'src.bin');
    // Incompressible data, written once.
    const fh = await fsp.open(src, 'w');
    for (let i = 0; i < sizeMiB; i++) await fh.write(randomBytes(MiB));
    await fh.close();
    const bytes = sizeMiB * MiB;
    console.log(`payload: ${sizeMiB} MiB random, tmpdir ${os.tmpdir()}`);

    await timed('baseline: sha256sum', bytes, async () => execFileSync('sha256sum', [src]));
    await timed('baseline: fs.copyFile', bytes, () => fsp.copyFile(src, path.join(dir, 'copy.bin')));
    await timed('baseline: read + node sha256', bytes, async () => {
      const h = createHash('sha256');
      for await (const c of fs.createReadStream(src, { highWaterMark: MiB })) h.update(c as Buffer);
      h.digest();
    });

    const state = path.join(dir, 'state');
    const store = new ContentStore(state);
    let digest: Digest = 'sha256:' as Digest;
    await timed('ContentStore.write (hash+fsync+rename)', bytes, async () => {
      digest = (await store.write(fs.createReadStream(src, { highWaterMark: MiB }))).digest;
    });
    await timed('ContentStore.write, blob present (skip)', bytes, () =>
      store.write(fs.createReadStream(src, { highWaterMark: MiB }), { digest, size: bytes }),
    );
    await timed('ContentStore.ingest (pushed 64 KiB chunks)', bytes, async () => {
      const ing = store.ingest();
      for await (const c of fs.createReadStream(src, { highWaterMark: 64 * 1024 })) {
        if (!ing.stream.write(c)) await new Promise((r) => ing.stream.once('drain', r));
      }
      await ing.commit();
    });

    // An image whose single "layer" is the payload, exported both ways.
    const cfg = await store.writeBytes(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } }));
    const man = await store.writeBytes(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, ...cfg },
        layers: [{ mediaType: MediaType.OciLayer, digest, size: bytes }],
      }),
    );
    const target = { mediaType: MediaType.OciManifest, ...man };
    await new ImageStore(state).put('docker.io/library/bench:latest', target);
    const images = [{ name: 'docker.io/library/bench:latest', target }];
    await timed('save --format docker → /dev/null', bytes, () => writeDockerArchive(store, images, devNull()));
    await timed('save --format oci → file', bytes, () => writeOciArchive(store, images, fs.createWriteStream(path.join(dir, 'o.tar'))));

    await new Promise<void>((resolve) => {
      new Benchmark.Suite()
        .add('parseReference("localhost:5000/team/app:1.0")', () => parseReference('localhost:5000/team/app:1.0'))
        .add('parseReference("busybox")', () => parseReference('busybox'))
        .on('cycle', (e: Benchmark.Event) => console.log(String(e.target)))
        .on('complete', () => resolve())
        .run();
    });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
