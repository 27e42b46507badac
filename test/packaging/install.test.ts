// The npm package as a user gets it: `npm pack` of a copy of this checkout (its
// prepack records the commit and makes the linux-x64 and linux-arm64 prebuilts,
// scripts/prebuild.js), installed into an empty project where no compiler is on
// PATH, then used to build as the unprivileged user: the prebuilt addon loads,
// the prebuilt img-launch enters the user namespace, `img version` shows the
// packed commit. The arm64 prebuilts are checked for their architecture and
// img-launch is run under QEMU. A source build is asked for only when no
// prebuilt fits, and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../helpers/cli';
import { cleanup, runAsUser, skipUnlessRootless } from '../helpers/rootless';

// ELF e_machine values (the 16-bit field at offset 18).
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
function elfMachine(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(20);
    fs.readSync(fd, head, 0, 20, 0);
    assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF', `${file} is not an ELF file`);
    return head.readUInt16LE(18);
  } finally {
    fs.closeSync(fd);
  }
}

// A directory for PATH with what npm, the install script and bin/img run, and no compiler.
function compilerFreeBin(dir: string): string {
  fs.mkdirSync(dir);
  for (const program of ['node', 'sh', 'readlink', 'uname', 'env']) {
    const found = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    fs.symlinkSync(fs.realpathSync(found), path.join(dir, program));
  }
  return dir;
}

function npmCli(): string {
  return fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
}

const crossReason = spawnSync('sh', ['-c', 'command -v aarch64-linux-gnu-g++']).status === 0 ? false : 'no aarch64-linux-gnu-g++ to make the arm64 prebuilt (.ci/setup-host installs g++-aarch64-linux-gnu)';

test('the packed tarball installs without a compiler and builds with its prebuilt addon and img-launch', { skip: skipUnlessRootless() || crossReason, timeout: 20 * 60_000 }, async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'img-pack-'));
  fs.chmodSync(work, 0o755);
  try {
    // A copy of the checkout as git would have it (prebuilds kept when current:
    // prepack only rebuilds stale ones), committed so that the commit packed is known.
    const src = path.join(work, 'src');
    fs.mkdirSync(src);
    execFileSync('sh', ['-c', `tar -C "$1" --exclude=./node_modules --exclude=./build --exclude=./.git --exclude=./dist -cf - . | tar -C "$2" -xpf -`, 'copy', REPO, src]);
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(src, 'node_modules'));
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=img test', '-c', 'user.email=test@img.invalid', ...args], { cwd: src, encoding: 'utf8' }).trim();
    git('init', '-q');
    git('add', '-A');
    git('commit', '-q', '-m', 'packed by test/packaging');
    const commit = git('rev-parse', 'HEAD');
    const packed = spawnSync(process.execPath, [npmCli(), 'pack', '--pack-destination', work], { cwd: src, encoding: 'utf8', env: { ...process.env, IMG_GIT_COMMIT: '' } });
    assert.equal(packed.status, 0, packed.stderr);
    const tarball = path.join(work, packed.stdout.trim().split('\n').pop()!);
    const listed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const arch of ['x64', 'arm64']) {
      for (const f of ['img_addon.node', 'img-launch', 'prebuild.json']) assert.ok(listed.includes(`package/prebuilds/linux-${arch}/${f}`), `the tarball has prebuilds/linux-${arch}/${f}`);
    }
    assert.ok(listed.includes('package/dist/build-info.json'));
    assert.ok(!listed.some((f) => f.startsWith('package/build/')), 'no source build output is packed');

    // The consumer: an empty project that allows img's install script (npm 11
    // runs a dependency's install script only when allowScripts names it).
    const bin = compilerFreeBin(path.join(work, 'bin'));
    const noCompiler = spawnSync('sh', ['-c', 'command -v cc gcc g++ c++ clang cmake make'], { env: { PATH: bin }, encoding: 'utf8' });
    assert.equal(noCompiler.stdout, '', 'no compiler or cmake on the install PATH');
    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, allowScripts: { img: true } }));
    const started = process.hrtime.bigint();
    const installed = spawnSync(process.execPath, [npmCli(), 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
      cwd: project,
      encoding: 'utf8',
      env: { PATH: bin, HOME: process.env.HOME ?? os.homedir() },
    });
    const installSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    assert.equal(installed.status, 0, `${installed.stdout}\n${installed.stderr}`);
    t.diagnostic(`npm install of the packed tarball without a compiler: ${installSeconds.toFixed(1)} s`);
    const pkg = path.join(project, 'node_modules', 'img');
    assert.match(installed.stdout, /img@[\d.]+ install\n> node scripts\/install\.js/, 'the install script ran');
    assert.doesNotMatch(installed.stdout + installed.stderr, /from source/);
    assert.ok(!fs.existsSync(path.join(pkg, 'build')), 'nothing was compiled at install');

    // What a user sees first: img version names the prebuilt and the packed commit.
    const img = path.join(project, 'node_modules', '.bin', 'img');
    const version = spawnSync(img, ['version'], { encoding: 'utf8', env: { PATH: bin, HOME: process.env.HOME ?? os.homedir() } });
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, new RegExp(` git hash {4}: ${commit.slice(0, 12)}\n`));
    assert.match(version.stdout, new RegExp(` addon {7}: loaded \\(${pkg}/prebuilds/linux-${process.arch}/img_addon\\.node\\)\n`));

    // The library entries through the exports map: the engine, and the browser-safe frontend.
    const lib = spawnSync(
      process.execPath,
      ['-e', `const f = require('img/frontend'); const img = require('img'); f.dockerfileToGraph('FROM scratch\\nCOPY a /a\\n', { resolveImageConfig: async () => null }).then((g) => console.log(Object.keys(g.vertices).length, typeof img.ContentStore, typeof f.ContentStore))`],
      { cwd: project, encoding: 'utf8' },
    );
    assert.equal(lib.status, 0, lib.stderr);
    assert.equal(lib.stdout, '2 function undefined\n');

    // A rootless build through bin/img: the prebuilt img-launch enters the namespace.
    fs.chmodSync(work, 0o755);
    execFileSync('chmod', ['-R', 'o+rX', project]);
    const ctx = path.join(work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /greeting/hello.txt\n');
    fs.writeFileSync(path.join(ctx, 'hello.txt'), 'built by the packed img\n');
    execFileSync('chmod', ['-R', 'o+rX', ctx]);
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-pack-user-'));
    try {
      execFileSync('chown', [String(Number(execFileSync('id', ['-u', 'imgtest'], { encoding: 'utf8' }))), userDir]);
      const out = path.join(userDir, 'out');
      const built = await runAsUser([img, '--debug', '-s', path.join(userDir, 'state'), 'build', '-o', `type=local,dest=${out}`, ctx], { env: { PATH: bin }, timeoutMs: 5 * 60_000 });
      assert.equal(built.code, 0, built.stderr);
      assert.match(built.stderr, /user namespace: entered by img-launch/);
      assert.equal(fs.readFileSync(path.join(out, 'greeting', 'hello.txt'), 'utf8'), 'built by the packed img\n');
    } finally {
      await cleanup(userDir);
    }

    // The arm64 prebuilts are arm64 code, and img-launch runs there: under QEMU
    // called by name, not through binfmt_misc, whose handler another test turns
    // off for a while (test/builder/multiplatform.test.ts); arm64's dynamic
    // loader comes with zlib1g-dev:arm64 (.ci/setup-host).
    assert.equal(elfMachine(path.join(pkg, 'prebuilds', 'linux-x64', 'img_addon.node')), EM_X86_64);
    assert.equal(elfMachine(path.join(pkg, 'prebuilds', 'linux-arm64', 'img_addon.node')), EM_AARCH64);
    assert.equal(elfMachine(path.join(pkg, 'prebuilds', 'linux-arm64', 'img-launch')), EM_AARCH64);
    const arm = spawnSync('qemu-aarch64-static', [path.join(pkg, 'prebuilds', 'linux-arm64', 'img-launch'), 'decide', 'build'], { encoding: 'utf8' });
    assert.equal(arm.status, 0, `${arm.error ?? ''}${arm.stderr}`);
    assert.equal(arm.stdout, 'enter\n');

    // Where no prebuilt may be used, the install script says it builds from source and what that needs.
    const fallback = spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.js')], { cwd: pkg, encoding: 'utf8', env: { PATH: bin, IMG_BUILD_FROM_SOURCE: '1' } });
    assert.notEqual(fallback.status, 0, 'no cmake on PATH: the source build fails');
    assert.match(fallback.stderr, /^img: IMG_BUILD_FROM_SOURCE=1; building the native addon and img-launch from source with cmake-js \(needs cmake, make, g\+\+, zlib headers/m);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
