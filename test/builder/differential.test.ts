// Differential conformance: the Dockerfiles in fixtures-diff/ are built by
// `img build` (as the unprivileged user, base image from a local registry) and,
// when a Docker daemon is reachable, by `docker build` (BuildKit). Their image
// configs, history and exported root filesystems must match. img's own results
// are also checked against hard-coded values (taken from docker's output on the
// same Dockerfiles), so CI without a Docker daemon still checks them.
//
// Differences found between docker 20.10 (BuildKit 0.8 frontend) and img are
// listed where they are normalised below; each is BuildKit-version noise, i.e.
// current BuildKit writes what img writes. Differences that were img bugs (now
// fixed, and covered here): COPY --parents copied the whole source directory;
// a symlink named as COPY source was "not found" (context followPaths ignored);
// `COPY --chmod dir/ /dest/` gave /dest/ itself the --chmod mode; a cleared
// CMD/ENTRYPOINT was written as "Cmd": null / [] instead of being omitted;
// a followed symlink source copied into a directory took its target's name;
// RUN's hostname was random instead of BuildKit's "buildkitsandbox".
//
// Dockerfile syntax docker 20.10 cannot parse (heredocs, --parents, --exclude)
// is checked against the Dockerfile reference only (see the "newer" test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tarStream from 'tar-stream';
import { imgArgv } from '../helpers/cli';
import { cleanup, rootlessUser, runImgRootless, skipUnlessRootless, spawnAsUser, tempDir } from '../helpers/rootless';
import { startRegistry, type Registry } from '../fixtures/registry';
import { makeBusyboxImage } from '../fixtures/images';
import { stepStates, steps, storedConfig } from './helpers';
import type { ImageConfig } from '../../lib/images/types';

const FIXTURES = path.join(__dirname, 'fixtures-diff');
const DOCKER = '/usr/bin/docker';
const skip = skipUnlessRootless();

// Docker is optional: the differential halves skip with this reason without it.
function dockerMissing(): string | false {
  // IMG_DIFF_NO_DOCKER=1 runs only img's half, as CI without a daemon does.
  if (process.env.IMG_DIFF_NO_DOCKER === '1') return 'IMG_DIFF_NO_DOCKER=1: differential comparison with docker build skipped';
  try {
    execFileSync(DOCKER, ['info'], { stdio: 'ignore', timeout: 20_000 });
    return false;
  } catch {
    return `no Docker daemon (${DOCKER} info failed): differential comparison with docker build skipped`;
  }
}
const noDocker = dockerMissing();
if (noDocker) console.log(`# differential.test.ts: ${noDocker}`);

// The base image: busybox plus users and groups for USER/--chown to resolve.
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\nother:x:2000:2000::/:/bin/sh\n';
const GROUP = 'root:x:0:\napp:x:1234:\nstaff:x:50:app\nother:x:2000:\n';

const nonce = `${process.pid}-${Date.now()}`;
let reg: Registry;
let root: string;
let state: string;
let secretFile: string;
const dockerImages: string[] = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  await reg.seed('busybox', 'latest', await makeBusyboxImage({ extraFiles: { 'etc/passwd': PASSWD, 'etc/group': GROUP } }));
  root = tempDir('img-diff-');
  state = path.join(root, 'state');
  secretFile = path.join(root, 'secret');
  fs.writeFileSync(secretFile, 's3cret\n', { mode: 0o600 });
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, root]);
});

after(async () => {
  if (skip) return;
  await reg?.stop();
  if (dockerImages.length) {
    try {
      execFileSync(DOCKER, ['rmi', '-f', ...dockerImages], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  cleanup(root);
});

// A build context: a copy of fixtures-diff/<name> the unprivileged user owns,
// with fixed modes, @CACHEID@ made unique to this run (docker's cache mounts
// outlive the test), @REG@ the registry's address (--from takes no variables) and, for main/, archive.tar.gz packed from archive-src/.
function context(name: string): string {
  const ctx = path.join(root, `ctx-${name}`);
  fs.cpSync(path.join(FIXTURES, name), ctx, { recursive: true, verbatimSymlinks: true });
  const walk = (d: string): void => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) {
        fs.chmodSync(p, 0o755);
        walk(p);
      } else if (!ent.isSymbolicLink()) fs.chmodSync(p, 0o644);
    }
  };
  fs.chmodSync(ctx, 0o755);
  walk(ctx);
  const df = path.join(ctx, 'Dockerfile');
  fs.writeFileSync(df, fs.readFileSync(df, 'utf8').replaceAll('@CACHEID@', `diff-${nonce}`).replaceAll('@REG@', reg.host));
  if (fs.existsSync(path.join(ctx, 'archive-src'))) {
    execFileSync('tar', ['--owner=0', '--group=0', '--mtime=2024-01-01', '--sort=name', '-czf', path.join(ctx, 'archive.tar.gz'), '-C', path.join(ctx, 'archive-src'), 'inner']);
  }
  const u = rootlessUser()!;
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, ctx]);
  return ctx;
}

async function img(args: string[]): Promise<string> {
  const r = await runImgRootless(['-s', state, 'build', '--progress', 'plain', ...args]);
  assert.equal(r.code, 0, `img build ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
}

function docker(args: string[]): string {
  try {
    return execFileSync(DOCKER, ['build', '--network=none', '--progress=plain', ...args], {
      env: { ...process.env, DOCKER_BUILDKIT: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`docker build ${args.join(' ')} failed:\n${e.stderr ?? err}`);
  }
}

// The image config docker stored (`docker save` carries the raw config JSON).
function dockerConfig(name: string): ImageConfig {
  const tar = execFileSync(DOCKER, ['save', name], { maxBuffer: 256 << 20 });
  const files = tarFiles(tar);
  const manifest = JSON.parse(files.get('manifest.json')!.toString());
  return JSON.parse(files.get(manifest[0].Config)!.toString());
}

// Regular files of an (uncompressed) tar, synchronously (small archives only).
function tarFiles(tar: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  let longName: string | null = null;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = str(345, 155);
    const name = longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    const body = tar.subarray(off + 512, off + 512 + size);
    longName = null;
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0') out.set(name, Buffer.from(body));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

interface Entry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  link?: string;
  content?: string; // text of small files, else sha256
}

// A rootfs tar (from `-o type=tar`) as path → what a user can observe.
async function listing(tarPath: string): Promise<Map<string, Entry>> {
  let data = fs.readFileSync(tarPath);
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
  const out = new Map<string, Entry>();
  const extract = tarStream.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
        if (name) {
          const body = Buffer.concat(chunks);
          const e: Entry = { type: h.type ?? 'file', mode: ((h.mode ?? 0) & 0o7777).toString(8), uid: h.uid ?? 0, gid: h.gid ?? 0 };
          if (h.linkname) e.link = h.linkname;
          if (h.type === 'file') e.content = body.length <= 200 && !body.includes(0) ? body.toString() : createHash('sha256').update(body).digest('hex');
          out.set(name, e);
        }
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(data);
  });
  return out;
}

// Entries of a listing outside busybox's /bin (the applet symlinks are the base layer's).
function own(l: Map<string, Entry>): Record<string, Entry> {
  return Object.fromEntries([...l].filter(([p]) => p !== 'bin' && !p.startsWith('bin/')).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// Docker 20.10's BuildKit leaves the mount points of RUN in the layer (empty
// directories: runc's /dev /proc /sys, /run/secrets, cache/tmpfs/bind
// targets); current BuildKit removes these stubs after the RUN, as img does.
const MOUNT_STUBS = new Set(['dev', 'proc', 'sys', 'run', 'run/secrets', 'cache', 'scratch', 'mnt', 'c2', 'ctx', 'custom']);

// Every difference between two listings, one line each. Normalised: the
// mount stubs above (empty directories only in docker's tree), and the
// setuid/setgid/sticky bits of COPY --chmod, which BuildKit before fsutil#168
// (moby/buildkit#3920) silently dropped; img keeps them like current BuildKit.
function fsDiff(a: Map<string, Entry>, b: Map<string, Entry>): string[] {
  const out: string[] = [];
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    let x = a.get(p);
    let y = b.get(p);
    if (!x && y?.type === 'directory' && MOUNT_STUBS.has(p)) continue;
    // `COPY --chmod=750 files/a.txt /modes/octal`, `COPY --chmod=750 files[/] /modes/dir/`:
    // BuildKit 0.8 makes the directories a copy creates (/modes, the destination
    // directory) 0755; since fsutil#228 (BuildKit v0.21, its testCopyChmod) they take
    // the --chmod mode, as img does.
    if (x && y && (p === 'modes' || p === 'modes/dir' || p === 'modes/noslash')) {
      x = { ...x, mode: '*' };
      y = { ...y, mode: '*' };
    }
    // ADD --chown of a local archive: BuildKit before v0.23 (moby/buildkit#1547,
    // fixed by #5987) chowned only the destination directory, not the extracted
    // entries; current BuildKit and img chown the entries too.
    if (x && y && p.startsWith('tarowned/')) {
      x = { ...x, uid: -1, gid: -1 };
      y = { ...y, uid: -1, gid: -1 };
    }
    if (x && y && p === 'modes/setuid') {
      x = { ...x, mode: (parseInt(x.mode, 8) & 0o777).toString(8) };
      y = { ...y, mode: (parseInt(y.mode, 8) & 0o777).toString(8) };
    }
    if (!x) out.push(`only in docker: /${p} ${JSON.stringify(y)}`);
    else if (!y) out.push(`only in img: /${p} ${JSON.stringify(x)}`);
    else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`/${p}: img ${JSON.stringify(x)} docker ${JSON.stringify(y)}`);
  }
  return out.sort();
}

// The comparable part of an image config. Normalisations (each is BuildKit
// version noise, not a behaviour difference):
//  - history `created` timestamps are dropped (build times);
//  - `OnBuild: null` (docker 20.10 writes null) equals an absent OnBuild;
//  - ARG history: BuildKit 0.8 records the instruction as written ("ARG B"),
//    current BuildKit (and img) the resolved value ("ARG B=argB"): compare names;
//  - EXPOSE / HEALTHCHECK history: the text is Go's %v / %q of BuildKit's
//    internal value, which changed between releases ("EXPOSE map[80/tcp:{}]" vs
//    "EXPOSE [80/tcp]"; HEALTHCHECK was %q of the pointer, &{[...] "5s" "0s" "0s" '\x00'},
//    and is %+v of the struct since 2025, {Test:[...] Interval:5s ... Retries:0}, as img
//    writes it): compare the keyword only (the values themselves are compared in config);
//  - (none for a step that changes nothing, such as WORKDIR of an existing
//    directory or COPY of an empty wildcard match: docker 20.10 and current
//    BuildKit, like img, keep its empty layer, the diff_id of an empty tar, with
//    a non-empty history entry; BuildKit 0.8's image exporter dropped it);
//  - COPY/ADD history: current BuildKit (and img) record --chown/--chmod
//    ("COPY --chown=app:staff files/ /owned/"), BuildKit 0.8 drops them.
function comparable(c: ImageConfig, normalise = true): Record<string, unknown> {
  const k = c.config ?? {};
  const pick = (v: unknown) => (v === null || (Array.isArray(v) && v.length === 0) ? undefined : v);
  return {
    Env: k.Env,
    Cmd: k.Cmd,
    Entrypoint: k.Entrypoint,
    WorkingDir: k.WorkingDir,
    User: k.User,
    ExposedPorts: k.ExposedPorts,
    Volumes: k.Volumes,
    Labels: k.Labels,
    StopSignal: k.StopSignal,
    Healthcheck: k.Healthcheck,
    OnBuild: pick(k.OnBuild),
    Shell: k.Shell,
    ArgsEscaped: k.ArgsEscaped,
    history: (c.history ?? []).map((h) => {
      let by = h.created_by ?? '';
      if (!normalise) return `${h.empty_layer ? 'empty ' : 'layer '}${by}`;
      if (by.startsWith('ARG ')) by = `ARG ${by.slice(4).split(' ').map((a) => a.split('=')[0]).join(' ')}`;
      if (/^(EXPOSE|HEALTHCHECK) /.test(by)) by = by.split(' ')[0];
      if (/^(COPY|ADD) /.test(by)) by = by.replace(/ --(chown|chmod)=\S+/g, '');
      return `${h.empty_layer ? 'empty ' : 'layer '}${by}`;
    }),
  };
}

// What the config checks record: one line per differing key.
function configDiff(imgC: ImageConfig, dockerC: ImageConfig): string[] {
  const a = comparable(imgC);
  const b = comparable(dockerC);
  const out: string[] = [];
  for (const key of Object.keys(a)) {
    try {
      assert.deepEqual(a[key], b[key]);
    } catch {
      out.push(`${key}: img ${JSON.stringify(a[key])} docker ${JSON.stringify(b[key])}`);
    }
  }
  return out;
}

async function imgTar(ctx: string, args: string[], name: string): Promise<Map<string, Entry>> {
  const dest = path.join(root, `${name}.tar`);
  await img([...args, '-o', `type=tar,dest=${dest}`, ctx]);
  return listing(dest);
}

function dockerTar(ctx: string, args: string[], name: string): Promise<Map<string, Entry>> {
  const dest = path.join(root, `${name}.docker.tar`);
  docker([...args, '-o', `type=tar,dest=${dest}`, ctx]);
  return listing(dest);
}

// `img save NAME | docker load`, streamed.
function saveToDocker(name: string): Promise<void> {
  const { child: save, done } = spawnAsUser(imgArgv(['-s', state, 'save', name]));
  const load = spawn(DOCKER, ['load'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  save.stderr!.on('data', (d) => (err += d));
  load.stderr.on('data', (d) => (err += d));
  save.stdout!.pipe(load.stdin);
  save.stdin!.end();
  return new Promise((resolve, reject) => {
    load.on('close', async (code) => {
      const saved = await done;
      if (code === 0 && saved === 0) resolve();
      else reject(new Error(`img save ${name} (${saved}) | docker load (${code}) failed: ${err}`));
    });
  });
}

function dockerRun(name: string): string {
  return execFileSync(DOCKER, ['run', '--rm', '--network=none', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const asEnv = () => ({ root, state, ctx: root });

// img's own results, checked with or without docker: fixtures-diff/expected/<name>.json
// holds img's config (raw history) and filesystem outside /bin, verified equal to
// docker build's up to the normalisations above. IMG_DIFF_UPDATE=1 rewrites it
// (review the diff against docker's output before committing).
function expectImg(name: string, got: unknown): void {
  const file = path.join(FIXTURES, 'expected', `${name}.json`);
  const text = JSON.stringify(got, null, 1) + '\n';
  if (process.env.IMG_DIFF_UPDATE === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  assert.deepEqual(JSON.parse(text), JSON.parse(fs.readFileSync(file, 'utf8')), `img's ${name} result differs from ${file}`);
}

// A local export (-o type=local) by the unprivileged user: the same tree as the
// tar export, except ownership (the files belong to the user who exported them) and
// so the setuid/setgid bits of files, which img drops there with a counted warning.
async function localMatchesTar(ctx: string, args: string[], fromTar: Map<string, Entry>, name: string): Promise<void> {
  const dest = path.join(root, `${name}.local`);
  const stderr = await img([...args, '-o', `type=local,dest=${dest}`, ctx]);
  const local: Record<string, Omit<Entry, 'uid' | 'gid'>> = {};
  const walk = (rel: string): void => {
    for (const ent of fs.readdirSync(path.join(dest, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      const st = fs.lstatSync(path.join(dest, r));
      const e: Omit<Entry, 'uid' | 'gid'> = { type: ent.isDirectory() ? 'directory' : ent.isSymbolicLink() ? 'symlink' : 'file', mode: (st.mode & 0o7777).toString(8) };
      if (ent.isSymbolicLink()) e.link = fs.readlinkSync(path.join(dest, r));
      if (ent.isFile()) {
        const body = fs.readFileSync(path.join(dest, r));
        e.content = body.length <= 200 && !body.includes(0) ? body.toString() : createHash('sha256').update(body).digest('hex');
      }
      local[r] = e;
      if (ent.isDirectory()) walk(r);
    }
  };
  walk('');
  let setid = 0;
  const tarView = Object.fromEntries(
    [...fromTar].map(([p, { uid: _u, gid: _g, ...rest }]) => {
      const mode = parseInt(rest.mode, 8);
      if (rest.type !== 'file' || !(mode & 0o6000)) return [p, rest];
      setid++;
      return [p, { ...rest, mode: (mode & 0o1777).toString(8) }];
    }),
  );
  if (setid) assert.match(stderr, new RegExp(`removed the setuid/setgid bits of ${setid} file\\(s\\)`), 'the dropped bits are told');
  assert.deepEqual(Object.fromEntries(Object.entries(local).sort()), Object.fromEntries(Object.entries(tarView).sort()), 'type=local and type=tar exports agree');
}

// Runs the docker half: the listed differences (after normalisation) must be none.
function reportDiffs(t: { diagnostic(msg: string): void }, diffs: string[]): void {
  for (const d of diffs) t.diagnostic(`difference: ${d}`);
  assert.deepEqual(diffs, [], 'img build and docker build differ');
}

test('main Dockerfile: config, history and filesystem as docker build makes them', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('main');
  const common = ['--build-arg', `REG=${reg.host}`, '--build-arg', 'B=argB', '--build-arg', 'V=vv', '--label', 'via=flag', '--secret', `id=tok,src=${secretFile}`];
  const name = `img-diff-test/img-main:${nonce}`;
  // Two builds with different RUNID: the second's cache mount still holds the first's line.
  await img([...common, '--build-arg', 'RUNID=1', ctx]);
  await img([...common, '--build-arg', 'RUNID=2', '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, [...common, '--build-arg', 'RUNID=2'], 'main');

  // The behaviours the Dockerfile reference states, spelled out (the golden file has all of it).
  const c = config.config!;
  assert.deepEqual([c.Entrypoint, c.Cmd], [['/bin/echo', 'entry'], ['cmd-arg']], 'CMD after ENTRYPOINT in one stage: both kept');
  assert.equal(c.WorkingDir, '/home/app/work');
  assert.ok(c.Env!.includes('B=two words') && c.Env!.includes('D=argB-default'), 'ARG after ENV: image keeps ENV, expansions see the build arg');
  assert.equal(fsImg.get('arg-env')?.content, 'argB|argB-default|default\n', 'RUN sees the build-arg value of B');
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['443/tcp', '53/udp', '80/tcp', '8000/tcp', '8001/tcp', '8002/tcp']);
  assert.equal(c.Labels!.via, 'flag', '--label joins the LABELs');
  assert.deepEqual(fsImg.get('rel/sub')?.type, 'directory', 'relative WORKDIR resolves against the previous one');
  assert.deepEqual(['home/app/work', 'home/app/work/id.txt'].map((p) => [fsImg.get(p)?.uid, fsImg.get(p)?.gid]), [[1234, 50], [1234, 50]], 'WORKDIR created as USER app:staff');
  assert.deepEqual([fsImg.get('owned/sub/c.md')?.uid, fsImg.get('owned/sub/c.md')?.gid, fsImg.get('user-only-owned')?.gid], [1234, 50, 2000], '--chown names resolve in the image /etc/passwd, /etc/group');
  assert.equal(fsImg.get('cachelog')?.content, '1\n2\n', 'the cache mount persists across builds');
  assert.equal(fsImg.get('secret-seen')?.content, 'secret-seen\n');
  assert.ok(![...fsImg.values()].some((e) => e.content?.includes('s3cret')) && !fsImg.has('run/secrets/tok'), 'the secret is not in the image');
  assert.ok(!fsImg.has('scratch/x') && !fsImg.has('cache/log') && !fsImg.has('mnt/one'), 'tmpfs, cache and bind mounts leave nothing behind');
  assert.equal(fsImg.get('extracted/inner/t.txt')?.content, 'in tar\n', 'ADD extracts a local tar.gz');
  assert.equal(fsImg.get('copied/link')?.link, 'one');
  expectImg('main', { config: comparable(config, false), fs: own(fsImg) });
  await localMatchesTar(ctx, [...common, '--build-arg', 'RUNID=2'], fsImg, 'main');

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-main:${nonce}`;
  dockerImages.push(dname, name);
  docker([...common, '--build-arg', 'RUNID=1', ctx]);
  docker([...common, '--build-arg', 'RUNID=2', '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, [...common, '--build-arg', 'RUNID=2'], 'main');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
  await saveToDocker(name);
  assert.equal(dockerRun(name), 'entry cmd-arg\n', 'img save | docker load; docker run runs ENTRYPOINT + CMD');
});

test('ONBUILD base then child: triggers, inherited SHELL, ENTRYPOINT resets CMD, HEALTHCHECK NONE', { skip, timeout: 300_000 }, async (t) => {
  const baseCtx = context('base');
  const childCtx = context('child');
  // One name in both stores: docker's FROM finds docker's base, img's finds img's.
  const base = `img-diff-test/base:${nonce}`;
  const child = `img-diff-test/img-child:${nonce}`;
  await img(['--build-arg', `REG=${reg.host}`, '-t', base, baseCtx]);
  await img(['--build-arg', `BASE=${base}`, '-t', child, childCtx]);
  const baseC = (await storedConfig(asEnv(), `docker.io/${base}`)).config;
  const childC = (await storedConfig(asEnv(), `docker.io/${child}`)).config;
  const fsImg = await imgTar(childCtx, ['--build-arg', `BASE=${base}`], 'child');

  assert.equal(baseC.config?.OnBuild?.length, 3, 'ONBUILD triggers are stored, not run, in the base');
  assert.deepEqual(baseC.config?.Cmd, ['/bin/sh', '-xc', 'echo base-cmd'], 'shell-form CMD uses SHELL');
  assert.ok(!childC.config?.OnBuild?.length, 'the child does not inherit the triggers');
  assert.equal(fsImg.get('onbuild-ran')?.content, 'triggered in /\n', 'ONBUILD RUN ran in the child');
  assert.ok(childC.config?.Env?.includes('OB=from-onbuild') && childC.config?.Labels?.['onbuild.label'] === 'yes');
  assert.deepEqual(childC.config?.Entrypoint, ['/bin/sh', '-xc', 'echo "child $OB"'], 'shell-form ENTRYPOINT uses the inherited SHELL');
  assert.ok(!childC.config?.Cmd?.length, "ENTRYPOINT in a stage without CMD resets the base's CMD");
  assert.deepEqual(childC.config?.Healthcheck, { Test: ['NONE'] });
  expectImg('onbuild', { base: comparable(baseC, false), child: comparable(childC, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dchild = `img-diff-test/docker-child:${nonce}`;
  dockerImages.push(base, dchild, child);
  docker(['--build-arg', `REG=${reg.host}`, '-t', base, baseCtx]);
  docker(['--build-arg', `BASE=${base}`, '-t', dchild, childCtx]);
  const fsDocker = await dockerTar(childCtx, ['--build-arg', `BASE=${base}`], 'child');
  reportDiffs(t, [...configDiff(baseC, dockerConfig(base)).map((d) => `base ${d}`), ...configDiff(childC, dockerConfig(dchild)), ...fsDiff(fsImg, fsDocker)]);
  await saveToDocker(child);
  assert.equal(dockerRun(child), 'child from-onbuild\n');
});

test('newer Dockerfile syntax: heredoc RUN/COPY, COPY --parents, --exclude, symbolic --chmod', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('modern');
  const name = `img-diff-test/img-modern:${nonce}`;
  await img(['--build-arg', `REG=${reg.host}`, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, ['--build-arg', `REG=${reg.host}`], 'modern');
  // Per the Dockerfile reference (docker 20.10 cannot check these, see below).
  const content = (p: string) => fsImg.get(p)?.content;
  assert.deepEqual([content('heredoc-run'), content('heredoc-sh')], ['heredoc run\nhi\n', 'second form\n'], 'heredoc RUN, as a script and fed to a command');
  assert.deepEqual([content('heredoc-copy.txt'), content('heredoc-quoted.txt')], ['expanded hi\n', 'literal $GREETING\n'], 'COPY heredoc expands unless the delimiter is quoted');
  const under = (d: string) => [...fsImg.keys()].filter((p) => p.startsWith(`${d}/`)).sort();
  assert.deepEqual(under('parents'), ['parents/a', 'parents/a/b.txt', 'parents/a/c', 'parents/a/c/d.txt'], '--parents keeps the path after /./');
  assert.deepEqual(under('nopivot'), ['nopivot/files', 'nopivot/files/sub', 'nopivot/files/sub/s.txt'], '--parents without a pivot keeps the whole path');
  assert.deepEqual(under('excluded'), ['excluded/a.txt', 'excluded/sub', 'excluded/sub/s.txt'], '--exclude=**/*.md');
  assert.equal(fsImg.get('symbolic')?.mode, '704', '--chmod=u+x,g-r on a 0644 file');
  expectImg('modern', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  // docker 20.10's builtin frontend (dockerfile 1.2, no `# syntax=` image offline)
  // rejects heredocs, --parents and --exclude; a newer daemon gets the full comparison.
  let fsDocker: Map<string, Entry>;
  try {
    fsDocker = await dockerTar(ctx, ['--build-arg', `REG=${reg.host}`], 'modern');
  } catch (err) {
    const msg = String(err);
    if (/unknown instruction|Unknown flag/i.test(msg)) return t.diagnostic(`docker comparison skipped: this docker's Dockerfile frontend is too old (${msg.trim().split('\n').pop()})`);
    throw err;
  }
  const dname = `img-diff-test/docker-modern:${nonce}`;
  dockerImages.push(dname);
  docker(['--build-arg', `REG=${reg.host}`, '-t', dname, ctx]);
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});

test('edge cases: global ARG, variable forms, ownership, context symlinks and .dockerignore, links, mount options', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('edge');
  const args = ['--build-arg', `REG=${reg.host}`, '--secret', `id=tok,src=${secretFile}`];
  const name = `img-diff-test/img-edge:${nonce}`;
  await img([...args, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, args, 'edge');
  const c = config.config!;
  assert.deepEqual(c.Env!.slice(1), ['X=1', 'Y=', 'Z=dflt', 'W= and ', 'Q=single $X'], 'one ENV line expands against the env before it');
  assert.equal(c.Env![0], 'PATH=/custom:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo shellcmd']);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD', '/bin/true', 'x'] });
  assert.equal(c.StopSignal, '9');
  const e = (p: string) => fsImg.get(p);
  assert.deepEqual([e('etc')?.uid, e('u1234')?.uid, e('u1234/f')?.uid], [0, 1234, 1234], 'WORKDIR chowns only what it creates');
  assert.deepEqual([e('global-app')?.uid, e('global-app')?.gid, e('mixed-owner')?.uid, e('mixed-owner')?.gid], [1234, 1234, 2000, 1234], '--chown=user takes its primary group; user:group mixes');
  assert.equal(e('ln-followed')?.content, 'A\n', 'COPY of a context symlink copies its target');
  assert.equal(e('tree/ln')?.link, 'a.txt', 'symlinks inside a copied directory stay links');
  assert.ok(!e('tree/drop') && !e('tree/keep/k.log') && e('tree/keep/important.log'), '.dockerignore with a ! exception');
  assert.ok(!e('nowhere'), 'an empty wildcard match copies nothing');
  assert.deepEqual([e('sticky')?.mode, e('sgid')?.mode, e('gone')], ['1777', '2755', undefined]);
  assert.deepEqual([e('hardlink-in-run')?.type, e('hardlink-in-run')?.link], ['link', 'global-app']);
  assert.deepEqual([e('cache-stat')?.content, e('secret-stat')?.content, e('bind-rw')?.content], ['1234 700\n', '400\n', 'rw\n'], 'cache uid/mode, secret target/mode, rw bind');
  expectImg('edge', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-edge:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, args, 'edge');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});

test('more: escape directive, legacy ENV, EXPOSE $VAR, empty ENTRYPOINT/CMD, stage on stage, ADD --chown tar', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('more');
  const args = ['--build-arg', `REG=${reg.host}`];
  const name = `img-diff-test/img-more:${nonce}`;
  await img([...args, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, args, 'more');
  const c = config.config!;
  assert.ok(!('Cmd' in c) && !('Entrypoint' in c), 'ENTRYPOINT [] and CMD [] leave no Cmd/Entrypoint key (image-spec omitempty)');
  assert.deepEqual([c.Env![1], c.ExposedPorts, c.User], ['LEGACY=value with spaces', { '9090/tcp': {} }, '2000:50']);
  assert.deepEqual(c.Labels, { multi: 'line one  line two', path: 'C:\\dir' }, 'escape=` : backslash is literal, backtick continues the line');
  assert.deepEqual(['tarowned/inner', 'tarowned/inner/t.txt'].map((p) => [fsImg.get(p)?.uid, fsImg.get(p)?.gid]), [[1234, 50], [1234, 50]], 'ADD --chown applies to extracted entries (BuildKit >= 0.23)');
  assert.equal(fsImg.get('pw')?.mode, '600');
  assert.equal(fsImg.get('inherited')?.content, 'from-a\n', 'an ARG declared in stage a is in scope in stage b, built FROM a');
  assert.ok(config.history!.some((h) => h.created_by === 'RUN |1 INHERITED=from-a /bin/sh -c echo "$INHERITED" > /inherited # buildkit'));
  assert.equal(fsImg.get('json-copy/passwd')?.content, PASSWD, 'exec-form COPY sources expand variables');
  expectImg('more', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-more:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, args, 'more');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});

// What a container of IMAGE sees: every path on the root filesystem with type,
// mode, owner, size and link target (docker applies the layers, whiteouts and all).
const WALK = "find / -xdev | sort | while read -r f; do stat -c '%n|%F|%a|%u|%g|%s|%N' \"$f\"; done";

test('layers: whiteouts, opaque directories, type changes, hard links, symlinked COPY destination', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('layers');
  const args = ['--build-arg', `REG=${reg.host}`];
  const name = `img-diff-test/img-layers:${nonce}`;
  await img([...args, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, args, 'layers');
  const e = (p: string) => fsImg.get(p);
  assert.deepEqual([...fsImg.keys()].filter((p) => p === 'd' || p.startsWith('d/')).sort(), ['d', 'd/a.txt', 'd/h', 'd/h-link']);
  assert.deepEqual([e('d')?.mode, e('d/h')?.uid, e('k/x')?.content, e('becomes-file-again')?.content], ['700', 1234, 'nowdir\n', 'back\n']);
  assert.ok(!e('bin/vi') && e('bin/sh'), 'a base file deleted in a RUN is gone');
  assert.equal(e('real/a.txt')?.content, 'A\n', 'COPY into /lnk/ follows the symlink inside the image');
  expectImg('layers', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-layers:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, args, 'layers');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
  // docker itself unpacks img's layers: the running containers see the same tree.
  await saveToDocker(name);
  const walk = (image: string) =>
    execFileSync(DOCKER, ['run', '--rm', '--network=none', '--entrypoint', '/bin/sh', image, '-c', WALK], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter((l) => !/^\/(dev|proc|sys)\|/.test(l)); // docker 20.10 leaves these RUN mount stubs in its layers
  const [a, b] = [walk(name), walk(dname)];
  assert.ok(a.includes('/d/h|regular file|644|1234|50|4|/d/h'), a.filter((l) => l.startsWith('/d')).join('\n'));
  assert.deepEqual(a, b, 'containers of the img-built and the docker-built image see the same filesystem');
});

test('misc: platform ARGs, global ARG in FROM, variables in WORKDIR/USER/LABEL, COPY relative to WORKDIR, COPY --from an image, ADD dir, --target', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('misc');
  const args = ['--build-arg', `REG=${reg.host}`, '--build-arg', 'TAG=latest', '--build-arg', 'NOTDECLARED=x', '--target', 'final'];
  const name = `img-diff-test/img-misc:${nonce}`;
  await img([...args, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, args, 'misc');
  const c = config.config!;
  assert.equal(fsImg.get('platform')?.content, 'amd64 linux/amd64 linux/amd64 [x] []\n', 'automatic platform ARGs once declared; a global ARG only where redeclared');
  assert.deepEqual([c.WorkingDir, c.User, c.Labels], ['/w', 'app:staff', { dir: '/w', tag: 'latest' }], 'variables in WORKDIR, USER, LABEL');
  assert.deepEqual(c.Env!.slice(1), ['E=', 'ESC=$HOME']);
  assert.deepEqual([c.Entrypoint, c.Cmd], [['/bin/echo'], ['/bin/sh', '-c', 'echo from-shell']], 'exec ENTRYPOINT + shell CMD');
  assert.deepEqual(['w/rel/a.txt', 'w/a.txt', 'added-dir/inner/i.txt', 'added-dir/a.txt', 'from-image-group'].map((p) => fsImg.has(p)), [true, true, true, true, true]);
  expectImg('misc', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-misc:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, args, 'misc');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});

test('links: symlink sources from a stage, --chown from an ARG, globs over a stage, symlink and directory destinations', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('links');
  const args = ['--build-arg', `REG=${reg.host}`];
  const name = `img-diff-test/img-links:${nonce}`;
  await img([...args, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const fsImg = await imgTar(ctx, args, 'links');
  const e = (p: string) => fsImg.get(p);
  assert.deepEqual([e('top-rel-link')?.type, e('top-abs-link')?.content, e('top-dirlink/f')?.content], ['file', 't\n', 'in\n'], 'a symlink named as source is followed');
  assert.deepEqual([e('o-owned/rel-link')?.link, e('o-owned/abs-link')?.link, e('o-owned/dirlink')?.uid], ['target', '/o/target', 1234], 'links inside a copied tree stay links (chowned)');
  assert.deepEqual([...fsImg.keys()].filter((p) => p.startsWith('glob/')).sort(), ['glob/abs-link', 'glob/f', 'glob/rel-link'], 'glob matches keep their own names; a matched dir link copies its contents');
  assert.deepEqual([e('lnfile')?.type, e('real-target/a.txt')?.content, e('existing/a.txt')?.content], ['symlink', 'A\n', 'A\n'], 'a destination that is a directory (or a link to one) receives the file');
  assert.deepEqual([e('added-600')?.mode, e('multi/a.txt')?.mode, e('multi/b.txt')?.mode], ['600', '755', '755']);
  expectImg('links', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-links:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, args, 'links');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});

test('runenv: what a RUN sees (user, groups, HOME, env, hostname, umask, capabilities)', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('runenv');
  const args = ['--build-arg', `REG=${reg.host}`];
  const fsImg = await imgTar(ctx, args, 'runenv');
  const c = (p: string) => fsImg.get(`out/${p}`)?.content;
  // The primary group is always among the supplementary groups (BuildKit >= 0.11.4, containerd's
  // CVE-2023-25173 fix); the kernel keeps them sorted, so `id` lists them by number.
  assert.equal(c('root'), 'uid=0(root) gid=0(root) groups=0(root)\nhome=/root\n/\n0022\nbuildkitsandbox\n', 'hostname is BuildKit\'s buildkitsandbox');
  assert.equal(c('app'), 'uid=1234(app) gid=1234(app) groups=50(staff),1234(app)\nhome=/home/app\n/\n0022\n', 'USER name: primary and supplementary groups from /etc/group, HOME from /etc/passwd');
  assert.deepEqual([c('uid2000'), c('other-root')], ['uid=2000(other) gid=2000(other) groups=2000(other)\nhome=/\n', 'uid=2000(other) gid=0(root) groups=0(root)\nhome=/\n']);
  assert.equal(c('env-app'), 'FOO=bar\nHOME=/home/app\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nPWD=/\nSHLVL=1\n');
  assert.deepEqual([c('caps-root'), c('caps-app')], ['CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n', 'CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n'], "docker's default capability set");
  expectImg('runenv', { fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const fsDocker = await dockerTar(ctx, args, 'runenv');
  reportDiffs(t, fsDiff(fsImg, fsDocker));
});

// Header mtimes (seconds) of some entries of an uncompressed tar.
async function tarMtimes(tarPath: string, names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const extract = tarStream.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
      if (names.includes(name)) out[name] = Math.round((h.mtime?.getTime() ?? 0) / 1000);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(fs.readFileSync(tarPath));
  });
  return out;
}

test('fidelity: one-match wildcard onto a file name, context dir modes, created dir owner, --chown ids, symlink times, COPY --link, ADD of xz/bzip2 tars, groups, proxy args', { skip, timeout: 300_000 }, async (t) => {
  const ctx = context('fidelity');
  // Modes and times context() does not keep: what BuildKit's context transfer preserves.
  fs.chmodSync(path.join(ctx, 'modes', 'sticky'), 0o1777);
  fs.chmodSync(path.join(ctx, 'modes', 'sgid'), 0o2777);
  fs.chmodSync(path.join(ctx, 'modes', 'gw'), 0o775);
  const linkTime = new Date('2001-02-03T04:05:06Z');
  fs.lutimesSync(path.join(ctx, 'modes', 'ln'), linkTime, linkTime);
  fs.mkdirSync(path.join(root, 'arch', 'inner'), { recursive: true });
  fs.writeFileSync(path.join(root, 'arch', 'inner', 't.txt'), 'packed\n');
  for (const [flag, file] of [['-J', 'archive.tar.xz'], ['-j', 'archive.tar.bz2']]) {
    execFileSync('tar', ['--owner=0', '--group=0', flag, '-cf', path.join(ctx, file), '-C', path.join(root, 'arch'), 'inner']);
  }
  const proxyA = ['--build-arg', 'http_proxy=http://proxy.invalid:3128', '--build-arg', 'HTTPS_PROXY=http://secure.invalid:3129'];
  const args = ['--build-arg', `REG=${reg.host}`];
  const name = `img-diff-test/img-fidelity:${nonce}`;
  await img([...args, ...proxyA, '-t', name, ctx]);
  const { config } = await storedConfig(asEnv(), `docker.io/${name}`);
  const dest = path.join(root, 'fidelity.tar');
  await img([...args, ...proxyA, '-o', `type=tar,dest=${dest}`, ctx]);
  const fsImg = await listing(dest);
  const e = (p: string) => fsImg.get(p);
  const owner = (p: string) => [e(p)?.uid, e(p)?.gid];

  assert.deepEqual([e('single.txt')?.type, e('single.txt')?.content], ['file', 'one\n'], 'COPY f*.txt /single.txt with one match makes the file /single.txt');
  assert.deepEqual(['modes/sticky', 'modes/sgid', 'modes/gw'].map((p) => e(p)?.mode), ['1777', '2777', '775'], 'context directories keep sticky, setgid and group write');
  assert.deepEqual(await tarMtimes(dest, ['modes/ln']), { 'modes/ln': linkTime.getTime() / 1000 }, 'a context symlink keeps its mtime');
  const local = path.join(root, 'fidelity.local');
  await img([...args, ...proxyA, '-o', `type=local,dest=${local}`, ctx]);
  assert.equal(fs.lstatSync(path.join(local, 'modes', 'ln')).mtime.toISOString(), linkTime.toISOString(), '... in a local export too');
  assert.deepEqual([e('newdir')?.mode, ...owner('newdir'), ...owner('newdir/sub'), ...owner('newdir/sub/f')], ['755', 0, 0, 1234, 1234, 1234, 1234], 'COPY --from creates /newdir 0755 root-owned; what is inside keeps its owner');
  assert.deepEqual([...owner('newdir-chown'), ...owner('newdir-chown/sub/f')], [3000, 3000, 3000, 3000], '--chown applies to the created directory too');
  assert.deepEqual([owner('chown-uid'), owner('chown-name'), owner('chown-uid-group')], [[3000, 3000], [3000, 50], [3000, 4000]], '--chown=UID is uid and gid; --chown=NAME takes the primary group');
  assert.deepEqual(
    [e('owned')?.mode, ...owner('owned'), e('owned/followed.txt')?.type, e('owned/linked.txt')?.type, e('lnk')?.type, e('lnk/through.txt')?.type],
    ['755', 0, 0, 'file', 'file', 'directory', 'file'],
    'COPY --link: the parent it creates replaces the stage\'s (0755 root); a symlink on the destination path is replaced, not followed',
  );
  assert.deepEqual([e('xz/inner/t.txt')?.content, e('bz2/inner/t.txt')?.content], ['packed\n', 'packed\n'], 'ADD extracts xz- and bzip2-compressed tars');
  assert.equal(e('out/id-svc')?.content, 'uid=3000(svc) gid=50(staff) groups=50(staff),4000(extra)\n', 'USER name: the primary group is among the supplementary groups');
  assert.equal(e('out/id-numeric')?.content, 'uid=3000(svc) gid=4000(extra) groups=4000(extra)\n');
  assert.equal(
    e('out/proxy')?.content,
    'HTTPS_PROXY=http://secure.invalid:3129\nHTTP_PROXY=http://proxy.invalid:3128\nhttp_proxy=http://proxy.invalid:3128\nhttps_proxy=http://secure.invalid:3129\n',
    'proxy build args reach RUN under both spellings',
  );
  assert.ok(!JSON.stringify(config).includes('invalid:312'), 'proxy values are in neither the history nor the image env');
  // Another proxy: the same cache keys, so every step is a cache hit.
  const again = await img([...args, '--build-arg', 'HTTP_PROXY=http://other.invalid:1', ctx]);
  const states = steps(stepStates(again));
  assert.ok(states.length > 0 && states.every(([, s]) => s === 'CACHED'), `proxy args stay out of cache keys:\n${again}`);
  expectImg('fidelity', { config: comparable(config, false), fs: own(fsImg) });

  if (noDocker) return t.diagnostic(noDocker);
  const dname = `img-diff-test/docker-fidelity:${nonce}`;
  dockerImages.push(dname, name);
  docker([...args, ...proxyA, '-t', dname, ctx]);
  const fsDocker = await dockerTar(ctx, [...args, ...proxyA], 'fidelity');
  reportDiffs(t, [...configDiff(config, dockerConfig(dname)), ...fsDiff(fsImg, fsDocker)]);
});
