// Peak memory of img on wide and on big layers (issue 13.4): `img pull`, `img unpack` and
// `img build` (COPY of the tree, diff, layer compression, image store) of an image whose one
// layer holds --files tiny files (200,000 by default, 1,000 per directory), and of one
// whose layer is a single --big-mib file (2 GiB by default, mostly zeros). The figure is
// GNU time's "maximum resident set size": the kernel's high-water mark of the largest
// process of the command's tree (img re-executes itself through img-launch).
//
//   node --import tsx bench/memory.ts [--files 200000] [--big-mib 2048] [--only files|big]
//
// Layers are written by tar-stream (the big one by the test fixture's raw writer), stored
// uncompressed in an OCI layout, copied to a local registry by skopeo. img runs as root,
// as it ships (bin/img: img-launch, the bundle), with the default snapshotter.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import { MediaType, type Descriptor } from '../lib/images/types';
import { bigFileTar } from '../test/fixtures/layers';
import { startRegistry } from '../test/fixtures/registry';
import { option } from './options';

const REPO = path.resolve(__dirname, '..');
const FILES = Number(option('files', '200000'));
const BIG_MIB = Number(option('big-mib', '2048'));
const ONLY = option('only', '');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'img-bench-memory-'));
const IMG = path.join(REPO, 'bin', 'img');

async function filesTar(out: string): Promise<void> {
  const pack = tarStream.pack();
  const done = pipeline(pack, fs.createWriteStream(out));
  const entry = (fields: { name: string; type?: 'directory'; mode: number; mtime: Date }, body?: string) =>
    new Promise<void>((resolve, reject) => {
      const h = fields as tarStream.Header;
      if (body === undefined) pack.entry(h, (err) => (err ? reject(err) : resolve()));
      else if (pack.entry(h, body)) resolve();
      else pack.once('drain', () => resolve());
    });
  for (let i = 0; i < FILES; i++) {
    const dir = `d${Math.floor(i / 1000)}`;
    if (i % 1000 === 0) await entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
    await entry({ name: `${dir}/f${i}`, mode: 0o644, mtime: new Date(0) }, `file ${i}\n`);
  }
  pack.finalize();
  await done;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

// One-layer image (layer stored uncompressed) in the OCI layout `oci` under tag `tag`.
async function addImage(oci: string, tag: string, layerFile: string): Promise<void> {
  const blobs = path.join(oci, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const digest = await sha256File(layerFile);
  fs.renameSync(layerFile, path.join(blobs, digest.slice(7)));
  const put = (b: Buffer): Descriptor => {
    const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    fs.writeFileSync(path.join(blobs, d.slice(7)), b);
    return { mediaType: '', digest: d as Descriptor['digest'], size: b.length };
  };
  const layer: Descriptor = { mediaType: MediaType.OciLayer, digest: digest as Descriptor['digest'], size: fs.statSync(path.join(blobs, digest.slice(7))).size };
  const config = { ...put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [digest] } }))), mediaType: MediaType.OciConfig };
  const manifest = { ...put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }))), mediaType: MediaType.OciManifest };
  fs.writeFileSync(path.join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexFile = path.join(oci, 'index.json');
  const index = fs.existsSync(indexFile) ? JSON.parse(fs.readFileSync(indexFile, 'utf8')) : { schemaVersion: 2, manifests: [] };
  index.manifests.push({ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } });
  fs.writeFileSync(indexFile, JSON.stringify(index));
}

// Peak RSS (MiB) and wall seconds of `img ARGS`.
function img(argv: string[], cwd = WORK): { mib: number; secs: number } {
  const out = path.join(WORK, 'time.txt');
  const r = spawnSync('/usr/bin/time', ['-o', out, '-f', '%M %e', IMG, ...argv], { cwd, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`img ${argv.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
  const [kib, secs] = fs.readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(/\s+/).map(Number);
  return { mib: kib / 1024, secs };
}

async function main(): Promise<void> {
  execFileSync(process.execPath, [path.join(REPO, 'scripts', 'bundle.js')]); // dist/img.js, what bin/img runs
  const oci = path.join(WORK, 'oci');
  const cases = [
    { tag: 'files', what: `${FILES.toLocaleString('en')} tiny files`, make: (f: string) => filesTar(f) },
    { tag: 'big', what: `one ${BIG_MIB} MiB file`, make: (f: string) => pipeline(bigFileTar('big.bin', BIG_MIB * 1024 * 1024), fs.createWriteStream(f)) },
  ].filter((c) => !ONLY || c.tag === ONLY);
  for (const c of cases) {
    process.stderr.write(`writing the layer of ${c.what}…\n`);
    const f = path.join(WORK, `${c.tag}.tar`);
    await c.make(f);
    await addImage(oci, c.tag, f);
  }
  const reg = await startRegistry();
  const rows: Array<{ layer: string; command: string; peakMiB: number; seconds: number }> = [];
  const base = img(['--state', path.join(WORK, 'state-empty'), 'ls']);
  rows.push({ layer: '(none)', command: 'img ls (the floor: Node and img loaded)', peakMiB: Math.round(base.mib), seconds: Math.round(base.secs * 10) / 10 });
  try {
    for (const c of cases) {
      const ref = `${reg.host}/bench/${c.tag}:latest`;
      execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${oci}:${c.tag}`, `docker://${ref}`]);
      const state = path.join(WORK, `state-${c.tag}`);
      const rootfs = path.join(WORK, `rootfs-${c.tag}`);
      const step = (command: string, argv: string[], cwd?: string) => {
        process.stderr.write(`${c.tag}: ${command}…\n`);
        const r = img(argv, cwd);
        rows.push({ layer: c.what, command, peakMiB: Math.round(r.mib), seconds: Math.round(r.secs * 10) / 10 });
        process.stderr.write(`  peak ${r.mib.toFixed(0)} MiB, ${r.secs.toFixed(1)} s\n`);
      };
      step('img pull', ['--state', state, 'pull', ref]);
      step('img unpack', ['--state', state, 'unpack', '-o', rootfs, ref]);
      // The unpacked tree is the build context: COPY, diff, compress and store it.
      fs.writeFileSync(path.join(WORK, `Dockerfile.${c.tag}`), 'FROM scratch\nCOPY . /data\n');
      step('img build (COPY of the tree)', ['--state', state, 'build', '-f', path.join(WORK, `Dockerfile.${c.tag}`), '-t', `bench/copy-${c.tag}`, rootfs]);
      fs.rmSync(rootfs, { recursive: true, force: true });
      fs.rmSync(state, { recursive: true, force: true });
    }
  } finally {
    await reg.stop();
  }
  console.log('| layer | command | peak RSS (MiB) | wall (s) |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.layer} | ${r.command} | ${r.peakMiB} | ${r.seconds} |`);
  fs.mkdirSync(path.join(REPO, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, 'bench', 'results', 'memory.json'), JSON.stringify({ date: new Date().toISOString(), kernel: os.release(), rows }, null, 2) + '\n');
  fs.rmSync(WORK, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
