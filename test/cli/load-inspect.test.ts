// img load, img inspect, img history — what docker users type next, against archives
// from four writers: img save (both formats), skopeo copy (docker-archive: and
// oci-archive:), docker 20.10's `docker save` (recorded: test/fixtures/docker/, made by
// Debian's dockerd; see the README there) and a hand-made one (tar-stream) with
// gzip layers, a gzip-compressed archive and an untagged image. Outputs are compared
// with what docker printed for the same image where docker's model and img's agree.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as tarStream from 'tar-stream';
import { runImg } from '../helpers/cli';
import { makeBusyboxImage, makeIndex, sha256, type BuiltImage } from '../fixtures/images';

const run = promisify(execFile);
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'docker');
const DOCKER_SAVE = path.join(FIXTURES, 'docker-save-20.10.tar');
let src: string; // the store archives are saved from
let work: string;
let busybox: BuiltImage;
let multi: BuiltImage;

before(async () => {
  src = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-load-src-'));
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'img-load-'));
  busybox = await makeBusyboxImage({ mediaTypes: 'docker' });
  const app = await makeBusyboxImage({ extraFiles: { 'etc/app.conf': 'answer=42\n' } });
  const arm = await makeBusyboxImage({ arch: 'arm64', extraFiles: { 'etc/arch': 'arm64\n' } });
  multi = await makeIndex([app, arm]);
  await busybox.writeToStore(src, 'busybox');
  await multi.writeToStore(src, 'localhost:5000/team/multi:v1');
});
after(async () => {
  await fsp.rm(src, { recursive: true, force: true });
  await fsp.rm(work, { recursive: true, force: true });
});

const freshState = () => fsp.mkdtemp(path.join(work, 'state-'));
const img = (state: string, args: string[], input?: Buffer) => runImg(['--state', state, ...args], { input });
async function ls(state: string): Promise<string> {
  const r = await img(state, ['ls']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}
// img ls without its two "… ago" columns, as rows of cells.
async function listing(state: string): Promise<string[][]> {
  return (await ls(state))
    .trim()
    .split('\n')
    .map((l) => l.split('\t').filter((c) => c && !/ ago$|^CREATED AT$|^UPDATED AT$/.test(c)));
}
async function ingestLeft(state: string): Promise<string[]> {
  return fsp.readdir(path.join(state, 'ingest')).catch(() => []);
}

// A docker archive written with tar-stream, independent of img's writers: a gzip
// layer named by its blob digest, an uncompressed one, a tagged and an untagged image.
async function handMadeArchive(): Promise<{ tar: Buffer; untaggedConfig: string }> {
  const pack = tarStream.pack();
  const add = (name: string, body: Buffer | string) => pack.entry({ name }, body);
  const base = await makeBusyboxImage({ extraFiles: { 'etc/hand': 'made\n' } });
  const gz = base.blobs.get(base.layers[0].digest)!; // the fixture stores its layer gzip'd
  const plain = gunzipSync(gz);
  const configA = Buffer.from(JSON.stringify({ ...base.config, config: { ...base.config.config, Labels: { made: 'by-hand' } } }));
  const configB = Buffer.from(JSON.stringify({ ...base.config, config: { Cmd: ['true'] } }));
  add(`${sha256(gz).slice(7)}.tar.gz`, gz);
  add('plain/layer.tar', plain);
  add(`${sha256(configA).slice(7)}.json`, configA);
  add(`${sha256(configB).slice(7)}.json`, configB);
  add(
    'manifest.json',
    JSON.stringify([
      { Config: `${sha256(configA).slice(7)}.json`, RepoTags: ['hand/made:1'], Layers: [`${sha256(gz).slice(7)}.tar.gz`] },
      { Config: `${sha256(configB).slice(7)}.json`, RepoTags: null, Layers: ['plain/layer.tar'] },
    ]),
  );
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return { tar: Buffer.concat(chunks), untaggedConfig: sha256(configB) };
}

describe('img load', () => {
  it('loads what img save writes, both formats, several images, from a file and from stdin; an index stays an index', async () => {
    const dockerTar = path.join(work, 'save-docker.tar');
    const ociTar = path.join(work, 'save-oci.tar');
    assert.equal((await img(src, ['save', '-o', dockerTar, 'busybox', 'localhost:5000/team/multi:v1'])).code, 0);
    assert.equal((await img(src, ['save', '--format', 'oci', '-o', ociTar, 'busybox', 'localhost:5000/team/multi:v1'])).code, 0);
    const want = await listing(src);
    for (const [args, input] of [
      [['load', '-i', dockerTar], undefined],
      [['load'], await fsp.readFile(ociTar)],
    ] as [string[], Buffer | undefined][]) {
      const state = await freshState();
      const r = await img(state, args, input);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'Loaded image: busybox:latest\nLoaded image: localhost:5000/team/multi:v1\n');
      assert.equal(r.stderr, ''); // progress goes to a terminal only
      // Same names, sizes, digests and platforms as the store they were saved from.
      assert.deepEqual(await listing(state), want);
      assert.deepEqual(await ingestLeft(state), []);
    }
  });

  it('loads skopeo docker-archive: (legacy layout, uncompressed layers) and oci-archive: (ref.name a whole reference)', async () => {
    const state = await freshState();
    const saved = path.join(work, 'for-skopeo.tar');
    assert.equal((await img(src, ['save', '-o', saved, 'busybox'])).code, 0);
    const dockerArchive = path.join(work, 'skopeo-docker.tar');
    const ociArchive = path.join(work, 'skopeo-oci.tar');
    await run('skopeo', ['copy', '-q', `docker-archive:${saved}:busybox:latest`, `docker-archive:${dockerArchive}:sk/busy:1`]);
    await run('skopeo', ['copy', '-q', `docker-archive:${saved}:busybox:latest`, `oci-archive:${ociArchive}:sk/busy:2`]);
    let r = await img(state, ['load', '-i', dockerArchive]);
    assert.equal(r.stdout, 'Loaded image: sk/busy:1\n', r.stderr);
    r = await img(state, ['load', '-q', '-i', ociArchive]);
    assert.equal(r.stdout, 'Loaded image: sk/busy:2\n', r.stderr);
    // Both are the image img saved: the same diff IDs; the docker archive keeps its config
    // byte for byte (the image ID), the OCI one has the config skopeo rewrote in OCI's form.
    r = await img(state, ['inspect', '-f', '{{.Id}} {{json .RootFS.Layers}} {{.Config.Cmd}}', 'sk/busy:1', 'sk/busy:2']);
    assert.equal(r.code, 0, r.stderr);
    const [one, two] = r.stdout.trim().split('\n');
    assert.equal(one, `${busybox.configDescriptor.digest} ${JSON.stringify(busybox.diffIds)} [sh]`);
    assert.match(two, new RegExp(`^sha256:[0-9a-f]{64} ${JSON.stringify(busybox.diffIds).replace(/[[\]]/g, '\\$&')} \\[sh\\]$`));
    // And the loaded image is whole: skopeo reads it back out of an img save.
    const again = path.join(work, 'again.tar');
    assert.equal((await img(state, ['save', '-o', again, 'sk/busy:1'])).code, 0);
    const { stdout } = await run('skopeo', ['inspect', `docker-archive:${again}`]);
    assert.deepEqual(JSON.parse(stdout).Layers, busybox.diffIds);
  });

  it("loads docker save's own archive (docker 20.10: symlinked layer.tar, three tags)", async () => {
    const state = await freshState();
    const r = await img(state, ['load', '-i', DOCKER_SAVE]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Loaded image: tiny:app\nLoaded image: example.com/team/tiny:1.0\nLoaded image: tiny:base\n');
    const listed = await ls(state);
    for (const name of ['tiny:app', 'example.com/team/tiny:1.0', 'tiny:base']) assert.match(listed, new RegExp(`^${name}\\t`, 'm'));
  });

  it('loads a hand-made archive, gzip-compressed as a whole: gzip layers kept, an untagged image told by ID', async () => {
    const state = await freshState();
    const { tar, untaggedConfig } = await handMadeArchive();
    const r = await img(state, ['load'], gzipSync(tar));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Loaded image: hand/made:1\nLoaded image ID: ${untaggedConfig}\n`);
    const i = await img(state, ['inspect', '-f', '{{.Config.Labels}} {{.RepoTags}}', 'hand/made:1', untaggedConfig.slice(7, 19)]);
    assert.equal(i.stdout, 'map[made:by-hand] [hand/made:1]\nmap[] []\n', i.stderr);
    // Kept under its ID (so prune leaves it), and removed by it.
    assert.match(await ls(state), new RegExp(`^${untaggedConfig}\\t`, 'm'));
    const rm = await img(state, ['rm', untaggedConfig]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch(rm.stdout, /Untagged/);
    assert.match(rm.stdout, new RegExp(`^Deleted: ${untaggedConfig}$`, 'm')); // its config, no longer named
    assert.doesNotMatch(await ls(state), new RegExp(`^${untaggedConfig}`, 'm'));
  });

  it('refuses corrupt, truncated and foreign files with the entry at fault, and keeps what the store held', async () => {
    const state = await freshState();
    assert.equal((await img(state, ['load', '-i', DOCKER_SAVE])).code, 0);
    const before = await listing(state);
    const good = path.join(work, 'good.tar');
    assert.equal((await img(src, ['save', '--format', 'oci', '-o', good, 'busybox'])).code, 0);
    const bytes = await fsp.readFile(good);

    // A layer whose bytes are not what its blobs/sha256/<hex> name says: flip a byte inside it.
    const layerHex = busybox.layers[0].digest.slice(7);
    const at = bytes.indexOf(Buffer.from(`blobs/sha256/${layerHex}`));
    const corrupt = Buffer.from(bytes);
    corrupt[at + 512 + 1000] ^= 0xff;
    const c = path.join(work, 'corrupt.tar');
    await fsp.writeFile(c, corrupt);
    let r = await img(state, ['load', '-i', c]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^Error: .*corrupt\\.tar: entry blobs/sha256/${layerHex} does not match its name: digest mismatch: expected sha256:${layerHex}`));

    // Cut short in the middle of that layer.
    const t = path.join(work, 'truncated.tar');
    await fsp.writeFile(t, bytes.subarray(0, at + 512 + 4096));
    r = await img(state, ['load', '-i', t]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^Error: .*truncated\\.tar is truncated: it ends inside entry blobs/sha256/${layerHex} — the file was cut short`));

    // Not a tar at all; a tar that is no image; no such file.
    const n = path.join(work, 'notes.txt');
    await fsp.writeFile(n, 'these are my notes, not an image\n'.repeat(40));
    r = await img(state, ['load', '-i', n]);
    assert.match(r.stderr, /^Error: .*notes\.txt is not a tar archive \(invalid tar header checksum/);
    const rootfs = path.join(work, 'rootfs.tar');
    await run('tar', ['-cf', rootfs, '-C', FIXTURES, 'README.md']);
    r = await img(state, ['load', '-i', rootfs]);
    assert.match(r.stderr, /^Error: .*rootfs\.tar holds no image: it has neither manifest\.json nor index\.json \(1 entries read\)/);
    r = await img(state, ['load', '-i', path.join(work, 'absent.tar')]);
    assert.match(r.stderr, /^Error: no such file: .*absent\.tar — check the path given to -i\/--input/);

    // An uncompressed layer that its config does not name.
    const { tar } = await handMadeArchive();
    const swapped = Buffer.from(tar);
    const m = swapped.indexOf(Buffer.from('etc/hand'));
    swapped[m + 512 + 600] ^= 0x01; // inside the plain layer's second entry
    r = await img(state, ['load'], swapped);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /layer plain\/layer\.tar has digest sha256:[0-9a-f]{64}, but its config names sha256:/);

    assert.deepEqual(await listing(state), before);
    assert.deepEqual(await ingestLeft(state), []);
  });
});

describe('img inspect and img history', () => {
  let state: string;
  let docker: Record<string, unknown>;
  before(async () => {
    state = await freshState();
    assert.equal((await img(state, ['load', '-i', DOCKER_SAVE])).code, 0);
    docker = JSON.parse(await fsp.readFile(path.join(FIXTURES, 'inspect-tiny-app.json'), 'utf8'))[0];
  });

  it("prints docker image inspect's array: the fields docker 20.10 printed for the same image, in docker 28's shape", async () => {
    const r = await img(state, ['inspect', 'tiny:app']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\[\n {4}\{\n {8}"Id": "sha256:/); // 4-space indent, as docker
    const [mine] = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(mine), ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'DockerVersion', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'RootFS', 'Metadata']);
    // Parent is docker's local build chain (empty after a docker load, always empty in img).
    assert.equal(mine.Parent, '');
    for (const k of ['Id', 'Comment', 'Created', 'DockerVersion', 'Author', 'Architecture', 'Os', 'RootFS']) assert.deepEqual(mine[k], docker[k], k);
    assert.deepEqual(mine.RepoTags, [...(docker.RepoTags as string[])].sort());
    // docker ≥ 26 drops Config's empty fields (DockerOCIImageConfig); the rest is equal.
    const dc = docker.Config as Record<string, unknown>;
    // (and container.Config's Image, the classic builder's parent, which OCI's config has not).
    const nonEmpty = Object.fromEntries(Object.entries(dc).filter(([k, v]) => k !== 'Image' && v !== null && v !== '' && v !== false));
    assert.deepEqual(mine.Config, nonEmpty);
    // The Cmd's && and > are escaped as encoding/json escapes them.
    assert.match(r.stdout, /"echo a \\u0026\\u0026 echo b \\u003e \/tmp\/x"/);
    // Digests: every name's repository at the manifest img keeps.
    assert.equal(mine.RepoDigests.length, 2);
    assert.match(mine.RepoDigests[0], /^example\.com\/team\/tiny@sha256:[0-9a-f]{64}$/);
    // Size: the uncompressed layers (two tars of 10240 and 2560 bytes).
    assert.equal(mine.Size, 12800);
  });

  it('-f runs the Go templates people use, as docker printed them for this image', async () => {
    const r = await img(state, [
      'inspect',
      '-f',
      '{{.Config.Labels}}|{{json .Config.Labels}}|{{.Config.Cmd}}|{{range .RepoTags}}<{{.}}>{{end}}|{{.Config.Entrypoint}}|{{json .Config.Entrypoint}}|{{index .Config.Labels "org.example.b"}}|{{len .RootFS.Layers}}',
      'tiny:app',
    ]);
    // docker printed <tiny:app><example.com/team/tiny:1.0> (its tag store's order); img sorts.
    assert.equal(
      r.stdout,
      'map[org.example.a:1 org.example.b:two]|{"org.example.a":"1","org.example.b":"two"}|[/bin/sh -c echo a && echo b > /tmp/x]|<example.com/team/tiny:1.0><tiny:app>|[]|null|two|2\n',
      r.stderr,
    );
    // A RepoDigests entry names the image too.
    const digest = JSON.parse((await img(state, ['inspect', '-f', '{{json .RepoDigests}}', 'tiny:app'])).stdout)[1];
    const byDigest = await img(state, ['inspect', '-f', '{{.Id}}', digest]);
    assert.equal(byDigest.stdout, `${docker.Id}\n`, byDigest.stderr);
    const f = await img(state, ['inspect', '--format', '{{.Os}}/{{.Architecture}} {{join .Config.Env ";"}}{{if .RepoDigests}} {{index .RepoDigests 0}}{{end}}', 'tiny:base']);
    assert.match(f.stdout, /^linux\/amd64  tiny@sha256:[0-9a-f]{64}\n$/);
  });

  it('names what is missing like docker, still printing the others; a bad template is refused first', async () => {
    let r = await img(state, ['inspect', 'nosuch', 'tiny:base', 'other:1']);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).length, 1);
    assert.match(r.stderr, /^Error: No such image: nosuch\nError: No such image: other:1 — /);
    r = await img(state, ['inspect', '-f', '{{.Nope}}', 'tiny:base']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /can't evaluate field Nope/);
    r = await img(state, ['inspect', '-f', '{{range .RepoTags}}', 'tiny:base']);
    assert.match(r.stderr, /^Error: template parsing error: .*\{\{range\}\} has no \{\{end\}\}/);
    assert.equal(r.stdout, '');
  });

  it("history: docker's columns and rows for the same image (IDs of lower steps are <missing> as after any docker load)", async () => {
    const want = (await fsp.readFile(path.join(FIXTURES, 'history-tiny-app-H-false-no-trunc.txt'), 'utf8')).split('\n').filter(Boolean);
    const r = await img(state, ['history', '-H=false', '--no-trunc', 'tiny:app']);
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout.split('\n').filter(Boolean);
    assert.equal(got.length, want.length);
    // Cells cut at the header's column starts (each table aligns its own widths).
    const table = (lines: string[]) => {
      const starts = ['IMAGE', 'CREATED AT', 'CREATED BY', 'SIZE', 'COMMENT'].map((h) => lines[0].indexOf(h));
      return lines.map((l) => starts.map((s, i) => l.slice(s, starts[i + 1]).trim()));
    };
    const [g, w] = [table(got), table(want)];
    assert.deepEqual(g[0], w[0]);
    for (let i = 1; i < w.length; i++) {
      assert.equal(g[i][0], i === 1 ? w[i][0] : '<missing>');
      // CREATED AT, CREATED BY and COMMENT equal; SIZE is the layer tar's size (docker's: the files' bytes).
      assert.deepEqual([g[i][1], g[i][2], g[i][4]], [w[i][1], w[i][2], w[i][4]]);
    }
    assert.deepEqual(g.slice(1).map((r) => r[3]), ['0', '2560', '0', '0', '10240']);
    // Truncated and human-readable: docker's --format output for the same rows.
    const fmt = await img(state, ['history', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'tiny:app']);
    const dockerFmt = (await fsp.readFile(path.join(FIXTURES, 'history-tiny-app-format.txt'), 'utf8')).split('\n').filter(Boolean);
    const fmtLines = fmt.stdout.split('\n').filter(Boolean);
    assert.equal(fmtLines[0], dockerFmt[0]);
    for (let i = 1; i < dockerFmt.length; i++) {
      const [, by, , comment] = dockerFmt[i].split('|');
      assert.equal(fmtLines[i], `<missing>|${by}|${i === 1 ? '2.56kB' : i === 4 ? '10.2kB' : '0B'}|${comment}`);
    }
    const q = await img(state, ['history', '-q', 'tiny:app']);
    assert.equal(q.stdout, `${dockerFmt[0].split('|')[0]}\n<missing>\n<missing>\n<missing>\n<missing>\n`);
    const human = await img(state, ['history', 'tiny:base']);
    assert.match(human.stdout, /^IMAGE {10}CREATED +CREATED BY {3}SIZE {6}COMMENT\n67ad01584310 {3}(\d+|About an?) \w+ ago +10\.2kB {4}Imported from -\n$/);
    const json = await img(state, ['history', '--format', 'json', 'tiny:base']);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout)), ['Comment', 'CreatedAt', 'CreatedBy', 'CreatedSince', 'ID', 'Size']);
    const bad = await img(state, ['history', '-H=maybe', 'tiny:base']);
    assert.match(bad.stderr, /invalid argument "=?maybe" for "-H, --human" flag/);
  });
});
