// Multi-platform builds end to end, as the unprivileged user: a busybox base for
// linux/amd64 and linux/arm64 (Debian's busybox-static of each architecture) in
// the test registry as one index; RUN for arm64 through QEMU (binfmt_misc, flag
// F); the results as users and other tools see them — the stored index, local
// and tar outputs per platform, OCI and docker archives (skopeo, umoci), push,
// pull --platform, unpack --platform — and a cross-compiling Dockerfile that
// builds with the arm64 handler switched off, proving it runs no emulated process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkEmulation, BINFMT_DIR } from '../../lib/exec/binfmt';
import { lockFile } from '../../lib/host/index';
import { ContentStore } from '../../lib/content/store';
import { ImageStore } from '../../lib/images/store';
import { MediaType, type ImageConfig, type Index, type Manifest } from '../../lib/images/types';
import { BUSYBOX_ARM64, makeMultiArchBusybox } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { cleanup, rootlessUser, runAsUser, runImgRootless, skipUnlessRootless, tempDir } from '../helpers/rootless';
import { stepStates } from './helpers';

const isRoot = process.getuid?.() === 0;
const emulation = checkEmulation('arm64');
const skip =
  skipUnlessRootless() ||
  (!fs.existsSync(BUSYBOX_ARM64) && `no arm64 busybox at ${BUSYBOX_ARM64} (.ci/setup-host unpacks Debian's busybox-static:arm64 there)`) ||
  (!emulation.ok && `arm64 binaries do not run here (binfmt_misc: ${emulation.reason}); .ci/setup-host installs qemu-user-static and binfmt-support and enables qemu-aarch64`);
// Tests that run arm64 binaries hold this shared; the one that switches the handler off holds it exclusively.
const BINFMT_LOCK = '/tmp/img-test-binfmt.lock';

let reg: Registry;
let root: string;

function write(dir: string, files: Record<string, string>): void {
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
  const u = rootlessUser()!;
  if (isRoot) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
}

function build(state: string, args: string[]) {
  return runImgRootless(['-s', state, 'build', '--progress', 'plain', ...args], { timeoutMs: 240_000 });
}

// e_machine of an ELF executable: 62 x86-64, 183 aarch64.
function elfMachine(file: string): number {
  return fs.readFileSync(file).readUInt16LE(18);
}

describe('multi-platform builds (linux/amd64 + linux/arm64)', { skip }, () => {
  before(async () => {
    root = tempDir('img-multiplatform-');
    reg = await startRegistry();
    await reg.seed('library/busybox', 'latest', await makeMultiArchBusybox());
  });
  after(async () => {
    await reg?.stop();
    if (root) await cleanup(root);
  });

  test('RUN on both platforms (arm64 emulated): index, local, tar, oci and docker archives, push, pull and unpack --platform', { timeout: 600_000 }, async () => {
    const lock = await lockFile(BINFMT_LOCK, 'shared');
    try {
      const state = path.join(root, 'state');
      const ctx = path.join(root, 'ctx');
      write(ctx, {
        Dockerfile: [
          `FROM ${reg.host}/library/busybox`,
          'ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT',
          'RUN uname -m > /arch && echo "$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT" > /args',
          '',
        ].join('\n'),
      });
      const name = `${reg.host}/team/multi:1`;
      const iid = path.join(root, 'iid');

      // --platform repeated: an index of two manifests in the store.
      const first = await build(state, ['--platform', 'linux/amd64', '--platform', 'linux/arm64', '-t', name, '--iidfile', iid, ctx]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /#\d+ \[linux\/arm64 2\/2\] RUN uname -m/, 'step names carry the platform');
      const rec = await new ImageStore(state).get(name);
      assert.equal(rec?.target.mediaType, MediaType.OciIndex);
      assert.equal(fs.readFileSync(iid, 'utf8'), rec!.target.digest, 'the image id of a multi-platform build is its index digest');
      const content = new ContentStore(state);
      const index = await content.readJson<Index>(rec!.target.digest);
      assert.deepEqual(
        index.manifests.map((m) => [m.mediaType, m.platform]),
        [
          [MediaType.OciManifest, { os: 'linux', architecture: 'amd64' }],
          [MediaType.OciManifest, { os: 'linux', architecture: 'arm64' }],
        ],
      );
      for (const m of index.manifests) {
        const config = await content.readJson<ImageConfig>((await content.readJson<Manifest>(m.digest)).config.digest);
        assert.equal(config.architecture, m.platform!.architecture);
        assert.equal(config.variant, undefined, 'arm64 has no variant');
      }
      const ls = await runImgRootless(['-s', state, 'ls']);
      assert.match(ls.stdout, new RegExp(`team/multi:1\\s.*${rec!.target.digest}\\n├─ linux/amd64\\s.*${index.manifests[0].digest}\\n└─ linux/arm64\\s.*${index.manifests[1].digest}\\n`));

      // oci-mediatypes=false: a Docker manifest list of Docker manifests.
      const dockerName = `${reg.host}/team/multi:docker`;
      const dockerTypes = await build(state, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=image,name=${dockerName},oci-mediatypes=false`, ctx]);
      assert.equal(dockerTypes.code, 0, dockerTypes.stderr);
      const list = await new ImageStore(state).get(dockerName);
      assert.equal(list?.target.mediaType, MediaType.DockerManifestList);
      assert.deepEqual(
        (await content.readJson<Index>(list!.target.digest)).manifests.map((m) => [m.mediaType, m.platform?.architecture]),
        [
          [MediaType.DockerManifest, 'amd64'],
          [MediaType.DockerManifest, 'arm64'],
        ],
      );

      // Comma-separated, to a directory: one per platform, every step CACHED.
      const out = path.join(root, 'out');
      const local = await build(state, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${out}`, ctx]);
      assert.equal(local.code, 0, local.stderr);
      const states = [...stepStates(local.stderr)].filter(([n]) => /^\[linux\/\S+ \d/.test(n));
      assert.equal(states.length, 4, local.stderr);
      assert.ok(states.every(([, st]) => st === 'CACHED'), local.stderr);
      assert.deepEqual(fs.readdirSync(out).sort(), ['linux_amd64', 'linux_arm64']);
      assert.equal(fs.readFileSync(path.join(out, 'linux_amd64/arch'), 'utf8'), 'x86_64\n');
      assert.equal(fs.readFileSync(path.join(out, 'linux_arm64/arch'), 'utf8'), 'aarch64\n');
      // BuildKit's values: arm64 has an empty variant; the build platform is the host.
      assert.equal(fs.readFileSync(path.join(out, 'linux_amd64/args'), 'utf8'), 'linux/amd64|linux|amd64||linux/amd64|linux|amd64|\n');
      assert.equal(fs.readFileSync(path.join(out, 'linux_arm64/args'), 'utf8'), 'linux/arm64|linux|arm64||linux/amd64|linux|amd64|\n');
      assert.equal(elfMachine(path.join(out, 'linux_arm64/bin/busybox')), 183);

      // One tar with a directory per platform.
      const tarFile = path.join(root, 'rootfs.tar');
      const tar = await build(state, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=tar,dest=${tarFile}`, ctx]);
      assert.equal(tar.code, 0, tar.stderr);
      const names = execFileSync('tar', ['tf', tarFile], { encoding: 'utf8' }).split('\n');
      assert.ok(names.includes('linux_amd64/') && names.includes('linux_arm64/bin/busybox'), names.slice(0, 5).join(' '));
      assert.equal(execFileSync('tar', ['xOf', tarFile, 'linux_arm64/arch'], { encoding: 'utf8' }), 'aarch64\n');

      // OCI archive: the index with both platforms; skopeo picks either, umoci unpacks the arm64 one.
      const oci = path.join(root, 'image-oci.tar');
      const ociBuild = await build(state, ['--platform', 'linux/amd64,linux/arm64', '-t', 'multi:oci', '-o', `type=oci,dest=${oci}`, ctx]);
      assert.equal(ociBuild.code, 0, ociBuild.stderr);
      const rawIndex = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${oci}`], { encoding: 'utf8' })) as Index;
      assert.deepEqual(rawIndex.manifests.map((m) => m.digest), index.manifests.map((m) => m.digest), 'the same images as in the store');
      const layout = path.join(root, 'layout');
      const arm64Layout = path.join(root, 'layout-arm64');
      fs.mkdirSync(layout);
      execFileSync('tar', ['xf', oci, '-C', layout]);
      execFileSync('skopeo', ['copy', '--quiet', '--override-arch', 'arm64', `oci:${layout}:oci`, `oci:${arm64Layout}:arm64`]);
      assert.match(execFileSync('umoci', ['ls', '--layout', layout], { encoding: 'utf8' }), /^oci$/m, 'umoci reads the layout and its tag');
      const u = rootlessUser()!;
      if (isRoot) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, arm64Layout]);
      const bundle = path.join(root, 'bundle');
      const um = await runAsUser(['umoci', 'unpack', '--rootless', '--image', `${arm64Layout}:arm64`, bundle], { timeoutMs: 120_000 });
      assert.equal(um.code, 0, um.stderr);
      assert.equal(fs.readFileSync(path.join(bundle, 'rootfs/arch'), 'utf8'), 'aarch64\n');

      // Push keeps both platforms; the registry serves each.
      const push = await runImgRootless(['-s', state, 'push', name]);
      assert.equal(push.code, 0, push.stderr);
      const remote = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`], { encoding: 'utf8' })) as Index;
      assert.deepEqual(remote, index);
      const arm = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${name}`], { encoding: 'utf8' }));
      assert.equal(arm.Architecture, 'arm64');

      // img save (docker format): manifest.json names the host's platform, the layout holds the whole index.
      const saved = path.join(root, 'saved.tar');
      const save = await runImgRootless(['-s', state, 'save', '-o', saved, name]);
      assert.equal(save.code, 0, save.stderr);
      const manifestJson = JSON.parse(execFileSync('tar', ['xOf', saved, 'manifest.json'], { encoding: 'utf8' }));
      assert.equal(manifestJson.length, 1);
      assert.equal(JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${saved}`], { encoding: 'utf8' })).Architecture, 'amd64');
      const savedIndex = JSON.parse(execFileSync('tar', ['xOf', saved, 'index.json'], { encoding: 'utf8' })) as Index;
      assert.equal(savedIndex.manifests[0].digest, rec!.target.digest);
      assert.equal(JSON.parse(execFileSync('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${saved}`], { encoding: 'utf8' })).Architecture, 'arm64');

      // A fresh store: pull and unpack the arm64 platform only.
      const other = path.join(root, 'other');
      const pull = await runImgRootless(['-s', other, 'pull', '--platform', 'linux/arm64', name]);
      assert.equal(pull.code, 0, pull.stderr);
      const rootfs = path.join(root, 'rootfs-arm64');
      const unpack = await runImgRootless(['-s', other, 'unpack', '--platform', 'linux/arm64', '-o', rootfs, name]);
      assert.equal(unpack.code, 0, unpack.stderr);
      assert.equal(fs.readFileSync(path.join(rootfs, 'arch'), 'utf8'), 'aarch64\n');
      assert.equal(elfMachine(path.join(rootfs, 'bin/busybox')), 183);
      const absent = await runImgRootless(['-s', other, 'unpack', '--platform', 'linux/s390x', '-o', path.join(root, 'rootfs-s390x'), name]);
      assert.notEqual(absent.code, 0);
      assert.match(absent.stderr, /no matching manifest for linux\/s390x in the manifest list entries of .*team\/multi:1: it has linux\/amd64, linux\/arm64/);

      // A base image without the platform asked for: the error names the image, the platform and what it has.
      const s390x = await build(state, ['--platform', 'linux/arm64,linux/s390x', ctx]);
      assert.notEqual(s390x.code, 0);
      assert.match(s390x.stderr, new RegExp(`no matching manifest for linux/s390x in the manifest list entries of ${reg.host.replace(/\./g, '\\.')}/library/busybox:latest: it has linux/amd64, linux/arm64`));
    } finally {
      await lock.release();
    }
  });

  test('a cross-compiling Dockerfile builds with the arm64 handler off: no emulated process; a foreign RUN then says what to enable', {
    skip: !isRoot && 'switching a binfmt_misc handler off needs root',
    timeout: 300_000,
  }, async () => {
    const state = path.join(root, 'cross-state');
    const ctx = path.join(root, 'cross-ctx');
    write(ctx, {
      Dockerfile: [
        `FROM --platform=$BUILDPLATFORM ${reg.host}/library/busybox AS tools`,
        'RUN uname -m > /tool-arch',
        `FROM --platform=$BUILDPLATFORM ${reg.host}/library/busybox AS build`,
        'ARG TARGETARCH',
        'COPY --from=tools /tool-arch /tool-arch',
        'RUN echo "$(uname -m) for $TARGETARCH" > /out',
        `FROM ${reg.host}/library/busybox`,
        'COPY --from=build /out /tool-arch /',
        '',
      ].join('\n'),
      'Dockerfile.run': `FROM ${reg.host}/library/busybox\nRUN true\n`,
    });
    const handler = path.join(BINFMT_DIR, (emulation as { handler: { name: string } }).handler.name);
    const lock = await lockFile(BINFMT_LOCK, 'exclusive');
    fs.writeFileSync(handler, '0');
    try {
      const out = path.join(root, 'cross-out');
      const cross = await build(state, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${out}`, ctx]);
      assert.equal(cross.code, 0, cross.stderr);
      assert.equal(fs.readFileSync(path.join(out, 'linux_amd64/out'), 'utf8'), 'x86_64 for amd64\n');
      assert.equal(fs.readFileSync(path.join(out, 'linux_arm64/out'), 'utf8'), 'x86_64 for arm64\n');
      assert.equal(fs.readFileSync(path.join(out, 'linux_arm64/tool-arch'), 'utf8'), 'x86_64\n');
      assert.equal(elfMachine(path.join(out, 'linux_arm64/bin/busybox')), 183, 'the final stage is the arm64 base');
      // The build-platform stage that does not depend on the target ran once for both.
      const toolsRuns = [...stepStates(cross.stderr).keys()].filter((n) => / tools 2\/2\] RUN uname -m/.test(n));
      assert.deepEqual(toolsRuns, ['[linux/amd64 tools 2/2] RUN uname -m > /tool-arch'], cross.stderr);

      const foreign = await build(state, ['--platform', 'linux/arm64', '-f', path.join(ctx, 'Dockerfile.run'), ctx]);
      assert.notEqual(foreign.code, 0);
      assert.match(foreign.stderr, /RUN for linux\/arm64 on this linux\/amd64 host needs emulation: the binfmt_misc handler \S+ for arm64 binaries is disabled — as root: echo 1 > \/proc\/sys\/fs\/binfmt_misc\//);
    } finally {
      fs.writeFileSync(handler, '1');
      await lock.release();
    }
  });
});
