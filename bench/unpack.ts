// `img unpack` (per snapshot backend) vs `umoci unpack --rootless` of the same
// ~200 MiB image (4 gzip layers of ~50 MiB, ~8,000 files, symlinks, a layer
// that deletes files), as the unprivileged user. Each measured run starts
// cold: no snapshots (img) / no bundle (umoci). Runs are interleaved so every
// tool sees the same machine load; medians of N runs.
//   node --import tsx bench/unpack.ts [--runs 3] [--mib 200] [--backends overlayfs,fuse-overlayfs,native] [--phases] [--dist]
// --dist runs the compiled CLI (npm run build) as an installed img would, instead of tsx.
// --phases: instead, time unpackImage and the copy-out separately in one process.
// Writes bench/results/unpack.json.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ContentStore } from '../lib/content/store';
import { ImageStore } from '../lib/images/store';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../lib/images/types';
import { tarPacker } from '../test/fixtures/layers';
import { TSX, cleanup, rootlessUser, runAsUser, runImgRootless, tempDir } from '../test/helpers/rootless';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const DIST = process.argv.includes('--dist');
const REPO = path.resolve(__dirname, '..');
const RUNS = Number(arg('runs', '3'));
const MIB = Number(arg('mib', '200'));
const BACKENDS = arg('backends', 'overlayfs,fuse-overlayfs,native').split(',');
const LAYERS = 4;

const sha = (b: Buffer): Digest => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// One layer tar: files of 1–48 KiB (half random, half compressible text) in
// nested dirs, some symlinks; layers after the first delete a few earlier files.
async function layerTar(n: number, bytesWanted: number): Promise<{ tar: Buffer; files: number }> {
  const tar = tarPacker();
  const add = tar.add;
  const mtime = new Date('2024-01-01T00:00:00Z');
  const random = crypto.randomBytes(64 * 1024);
  const text = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit\n'.repeat(1200));
  let bytes = 0;
  let files = 0;
  await add({ name: `l${n}/`, type: 'directory', mode: 0o755, mtime });
  for (let d = 0; bytes < bytesWanted; d++) {
    await add({ name: `l${n}/d${d}/`, type: 'directory', mode: 0o755, mtime });
    for (let f = 0; f < 40 && bytes < bytesWanted; f++) {
      const size = 1024 + ((d * 40 + f) * 7919) % (47 * 1024);
      const body = (f % 2 ? random : text).subarray(0, size);
      await add({ name: `l${n}/d${d}/f${f}`, type: 'file', mode: 0o644, mtime, uid: f % 3 === 0 ? 1000 : 0, gid: 0 }, body);
      bytes += size;
      files++;
      if (f % 10 === 0) await add({ name: `l${n}/d${d}/s${f}`, type: 'symlink', linkname: `f${f}`, mode: 0o777, mtime });
    }
  }
  if (n > 0) for (let f = 0; f < 20; f++) await add({ name: `l${n - 1}/d0/.wh.f${f}`, type: 'file', mode: 0o644, mtime }, Buffer.alloc(0));
  return { tar: await tar.finish(), files };
}

async function main() {
  const u = rootlessUser();
  if (!u) throw new Error('no unprivileged user to run as (see test/helpers/rootless.ts)');
  const base = tempDir('img-bench-unpack-');
  const state = path.join(base, 'state');
  const oci = path.join(base, 'oci');
  const blobs = new Map<Digest, Buffer>();
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  let files = 0;
  let uncompressed = 0;
  process.stderr.write(`generating a ${MIB} MiB image in ${LAYERS} layers...\n`);
  for (let i = 0; i < LAYERS; i++) {
    const { tar, files: n } = await layerTar(i, (MIB * 1024 * 1024) / LAYERS);
    const gz = gzipSync(tar, { level: 1 });
    files += n;
    uncompressed += tar.length;
    diffIds.push(sha(tar));
    const d: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: sha(gz), size: gz.length };
    layers.push(d);
    blobs.set(d.digest, gz);
  }
  const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} };
  const cfg = Buffer.from(JSON.stringify(config));
  const cfgDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: sha(cfg), size: cfg.length };
  blobs.set(cfgDesc.digest, cfg);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfgDesc, layers };
  const mBuf = Buffer.from(JSON.stringify(manifest));
  const mDesc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha(mBuf), size: mBuf.length };
  blobs.set(mDesc.digest, mBuf);
  const store = new ContentStore(state);
  for (const [d, b] of blobs) await store.writeBytes(b, { digest: d });
  await new ImageStore(state).put('docker.io/library/bench:latest', mDesc);
  fs.mkdirSync(path.join(oci, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [d, b] of blobs) fs.writeFileSync(path.join(oci, 'blobs', 'sha256', d.slice(7)), b);
  fs.writeFileSync(path.join(oci, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...mDesc, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, base]);
  const compressed = layers.reduce((a, l) => a + l.size, 0);

  if (process.argv.includes('--phases')) {
    // In-process split of img's time (see bench/snapshot-phases.ts), then stop.
    const res = await runAsUser([process.execPath, '--import', TSX, path.join(__dirname, 'snapshot-phases.ts'), state, 'bench', BACKENDS.join(',')], { timeoutMs: 600_000 });
    process.stdout.write(res.stdout + res.stderr);
    await cleanup(base);
    return;
  }
  const times: Record<string, number[]> = {};
  const tools = [...BACKENDS.map((b) => `img-${b}`), 'umoci'];
  for (const t of tools) times[t] = [];
  // Reset between runs: as root directly, else inside the user's namespace (files have subordinate owners).
  const wipe = async (p: string) => {
    if (process.getuid?.() === 0) fs.rmSync(p, { recursive: true, force: true });
    else await runAsUser(['unshare', '--user', '--map-auto', '--map-root-user', 'rm', '-rf', p]);
  };
  for (let run = -1; run < RUNS; run++) {
    for (const t of tools) {
      const out = path.join(base, `out-${t}`);
      await wipe(out);
      await wipe(path.join(state, 'snapshots'));
      const t0 = process.hrtime.bigint();
      const res =
        t === 'umoci'
          ? await runAsUser(['umoci', 'unpack', '--rootless', '--image', `${oci}:bench`, out], { timeoutMs: 600_000 })
          : DIST
            ? await runAsUser([process.execPath, path.join(REPO, 'dist', 'lib', 'cli', 'main.js'), '-s', state, '-b', t.slice(4), 'unpack', '-o', out, 'bench'], { timeoutMs: 600_000 })
            : await runImgRootless(['-s', state, '-b', t.slice(4), 'unpack', '-o', out, 'bench'], { timeoutMs: 600_000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.code !== 0) throw new Error(`${t} failed: ${res.stderr}`);
      if (run >= 0) times[t].push(Math.round(ms));
      process.stderr.write(`${run < 0 ? 'warm-up' : `run ${run + 1}`} ${t}: ${Math.round(ms)} ms\n`);
    }
  }
  const result = {
    date: new Date().toISOString(),
    command: `node --import tsx bench/unpack.ts --runs ${RUNS} --mib ${MIB}${DIST ? " --dist" : ""}`,
    host: { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10), kernel: os.release() },
    image: { layers: LAYERS, files, uncompressedBytes: uncompressed, compressedBytes: compressed },
    note: 'wall time of the whole command as the unprivileged user (img: includes entering the user namespace and copying the merged rootfs out; umoci: a bundle with rootfs + config.json)',
    ms: Object.fromEntries(tools.map((t) => [t, { median: median(times[t]), all: times[t] }])),
  };
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'unpack.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result.ms, null, 2) + '\n');
  await cleanup(base);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
