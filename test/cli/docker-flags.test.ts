// docker/buildx flags a script may pass to img's commands: each is honoured
// or fails with an error naming the flag and what to do instead — never dropped.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { runImg } from '../helpers/cli';
import { build, setup, skip } from '../builder/helpers';
import { makeBusyboxImage } from '../fixtures/images';

test('docker build flags img cannot honour are refused by name, before any work', async () => {
  const cases: [string[], RegExp][] = [
    [['--attest', 'type=sbom'], /^Error: img build does not support --attest:/],
    [['--provenance=true'], /^Error: img does not support --provenance=true: img writes no attestation manifests .* — drop --provenance, or pass --provenance=false/],
    [['--sbom=true'], /^Error: img does not support --sbom=true:/],
    [['--rm=false'], /^Error: img does not support --rm=false: img never keeps the containers of RUN steps/],
    [['--call', 'outline'], /^Error: img does not support --call=outline — use --call=check/],
    [['--allow', 'bogus'], /^Error: unknown entitlement bogus — use --allow network.host or --allow security.insecure/],
    [['--shm-size', 'lots'], /^Error: invalid argument "lots" for "--shm-size" flag: invalid size: 'lots'/],
    [['--ulimit', 'nofile=9:1'], /^Error: ulimit soft limit must be less than or equal to hard limit: 9 > 1/],
    [['--load', '-o', 'type=local,dest=out'], /^Error: --load cannot be combined with --output type=local/],
    [['--disable-content-trust=false'], /^Error: img does not support --disable-content-trust=false:/],
  ];
  for (const [flags, want] of cases) {
    const r = await runImg(['--state', '/nonexistent/state', 'build', ...flags, '/nonexistent/ctx']);
    assert.equal(r.code, 1, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, flags.join(' '));
    assert.equal(r.stdout, '', flags.join(' '));
  }
  // The flags `docker buildx build` takes and ignores (old `docker build` resource limits,
  // --squash, --security-opt, --builder): taken, said to have no effect, and the build goes on
  // (here to the missing context, which is the error).
  const ignored: [string[], RegExp][] = [
    [['-m', '1g', '--memory-swap', '2g'], /^WARN img build ignores --memory: img does not set resource limits on RUN steps; to limit the whole build, run img under one .*\nWARN img build ignores --memory-swap:/],
    [['--cpu-shares', '2', '--cpuset-cpus', '0-1'], /^WARN img build ignores --cpu-shares:.*\nWARN img build ignores --cpuset-cpus:/],
    [['--squash'], /^WARN img build ignores --squash: img does not squash layers; for one layer, end with a stage FROM scratch/],
    [['--builder', 'x'], /^WARN img build ignores --builder: img has no builder instances/],
    [['--security-opt', 'seccomp=unconfined', '--security-opt', 'label=disable'], /^WARN img build ignores --security-opt: .* use RUN --security=insecure with --allow security.insecure\nError: /],
  ];
  for (const [flags, want] of ignored) {
    const r = await runImg(['--state', '/nonexistent/state', 'build', ...flags, '/nonexistent/ctx']);
    assert.equal(r.code, 1, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, flags.join(' '));
    assert.match(r.stderr, /\/nonexistent\/ctx/, `${flags.join(' ')}: the build went on to the context`);
  }
  // The refused flags stay out of the help; the accepted buildx ones are listed.
  const help = await runImg(['build', '--help']);
  assert.doesNotMatch(help.stdout, /--squash|--memory/);
  for (const f of ['--load ', '--provenance string', '--sbom string', '--call string', '--allow list', '--shm-size bytes', '--ulimit ulimit']) assert.ok(help.stdout.includes(f), f);
  assert.match(help.stdout, /--progress string +Set type of progress output \(auto, tty, plain, rawjson, quiet\)/);
});

test('buildx flags img honours: --load, --provenance=false, --sbom=false, --call=check, --progress=quiet, legacy --rm', { skip }, async () => {
  const e = await setup({ Dockerfile: 'FROM busybox\nRUN echo hi > /hi\n' });
  const r = await build(e, ['-t', 'flags:1', '--load', '--provenance=false', '--sbom=false', '--rm', '--force-rm', '--compress', '--allow', 'network.host', e.ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Successfully built docker.io\/library\/flags:1\n$/);
  const ls = await runImg(['--state', e.state, 'ls']);
  assert.match(ls.stdout, /^flags:1\t/m);

  // --progress=quiet: nothing on stdout or stderr (only -q prints the ID).
  const q = await build(e, ['-t', 'flags:2', '--progress=quiet', e.ctx]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout, '');
  assert.equal(q.stderr, '');
  assert.match((await runImg(['--state', e.state, 'ls'])).stdout, /^flags:2\t/m);

  // --call=check is --check: a finding exits 1 and builds nothing.
  fs.writeFileSync(path.join(e.ctx, 'Dockerfile'), 'from busybox AS Base\n');
  const c = await build(e, ['--call=check', '-t', 'flags:3', e.ctx]);
  assert.equal(c.code, 1, c.stderr + c.stdout);
  assert.match(c.stdout + c.stderr, /StageNameCasing|FromAsCasing/);
  assert.doesNotMatch((await runImg(['--state', e.state, 'ls'])).stdout, /flags:3/);
});

test('save, load, history, inspect, prune: docker flags honoured or refused by name', async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cli-flags-'));
  try {
    const img = await makeBusyboxImage();
    await img.writeToStore(state, 'bb');
    const refused: [string[], RegExp][] = [
      [['save', '--platform', 'linux/amd64', 'bb'], /^Error: img save does not support --platform: .* — drop --platform/],
      [['load', '--platform', 'linux/amd64', '-i', '/nonexistent.tar'], /^Error: img load does not support --platform: .* — drop --platform/],
      [['history', '--platform', 'linux/amd64', 'bb'], /^Error: img history does not support --platform:/],
      [['inspect', '--platform', 'linux/amd64', 'bb'], /^Error: img inspect does not support --platform:/],
      [['inspect', '--type', 'container', 'bb'], /^Error: img inspect --type container: img has no containers, only images — /],
      [['prune', '--filter', 'until=24h'], /^Error: img prune does not support --filter: .* — drop --filter/],
      [['prune', '--keep-storage', '1g'], /^Error: img prune does not support --keep-storage:/],
    ];
    for (const [args, want] of refused) {
      const r = await runImg(['--state', state, ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    // docker inspect --type image --size: the image's object, as without them.
    const plain = await runImg(['--state', state, 'inspect', 'bb']);
    const typed = await runImg(['--state', state, 'inspect', '--type', 'image', '--size', 'bb']);
    assert.equal(typed.code, 0, typed.stderr);
    assert.equal(typed.stdout, plain.stdout);
    const help = await runImg(['prune', '--help']);
    assert.match(help.stdout, /-a, --all +Remove all unused build cache/);
    assert.match(help.stdout, /-f, --force +Do not prompt for confirmation/);
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
