// `img push` as a user runs it: pull, tag, push to another repository (mounted), push to
// an authenticated registry after `img login`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runImg } from '../helpers/cli';
import { makeBusyboxImage, type BuiltImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'img-cli-push-'));
let n = 0;
const fresh = (p: string): string => fs.mkdtempSync(path.join(tmp, `${p}${n++}-`));

describe('img push', () => {
  let reg: Registry;
  let secure: Registry;
  let img: BuiltImage;
  before(async () => {
    [reg, secure] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' })]);
    img = await makeBusyboxImage({ extraFiles: { 'etc/cli': 'push' } });
    await reg.seed('library/busybox', 'latest', img);
  });
  after(async () => {
    await reg?.stop();
    await secure?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pushes a pulled and re-tagged image, mounting its blobs from the source repository', async () => {
    const state = fresh('state-');
    assert.equal((await runImg(['--state', state, 'pull', `${reg.host}/library/busybox`])).code, 0);
    assert.equal((await runImg(['--state', state, 'tag', `${reg.host}/library/busybox`, `${reg.host}/team/tool:1.0`])).code, 0);
    const res = await runImg(['--state', state, 'push', `${reg.host}/team/tool:1.0`]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Pushing ${reg.host}/team/tool:1.0...`);
    assert.ok(lines.includes(`${img.layers[0].digest.slice(7, 19)}: Mounted from library/busybox`), res.stdout);
    assert.equal(lines.at(-2), `1.0: digest: ${img.manifest.digest} size: ${img.manifest.size}`);
    assert.equal(lines.at(-1), `Successfully pushed ${reg.host}/team/tool:1.0`);
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/team/tool:1.0`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, img.manifest.digest);
    assert.deepEqual(inspected.Layers, [img.layers[0].digest]);

    // Again: everything is there already.
    const again = await runImg(['--state', state, 'push', `${reg.host}/team/tool:1.0`]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`${img.layers[0].digest.slice(7, 19)}: Layer already exists`));
  });

  it('needs a login for an authenticated registry, then pushes', async () => {
    const state = fresh('state-');
    const env = { DOCKER_CONFIG: fresh('docker-') };
    await img.writeToStore(state, `${secure.host}/alice/app`);
    const denied = await runImg(['--state', state, 'push', `${secure.host}/alice/app`], { env });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, new RegExp(`Error: .*${secure.host}/alice/app: HTTP 401.* — run \`img login ${secure.host}\``));
    assert.equal((await runImg(['login', '-u', 'alice', '--password-stdin', secure.host], { env, input: 'wonderland' })).code, 0);
    const res = await runImg(['--state', state, 'push', `${secure.host}/alice/app`], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^Pushing ${secure.host}/alice/app:latest\\.\\.\\.\\n`));
    assert.match(res.stdout, new RegExp(`${img.layers[0].digest.slice(7, 19)}: Pushed \\(`));
    assert.match(res.stdout, new RegExp(`Successfully pushed ${secure.host}/alice/app:latest\\n$`));
  });

  it('explains a missing image and a digest reference', async () => {
    const state = fresh('state-');
    const missing = await runImg(['--state', state, 'push', `${reg.host}/no/such:tag`]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, new RegExp(`Error: image ${reg.host}/no/such:tag not found in ${state}`));
    const digest = await runImg(['--state', state, 'push', `${reg.host}/no/such@${img.manifest.digest}`]);
    assert.match(digest.stderr, /Error: cannot push by digest/);
  });

  it("docker's -q, -a/--all-tags and --username: pull -q, push -q and push -a print the references scripts read", async () => {
    const state = fresh('state-');
    const pulled = await runImg(['--state', state, 'pull', '-q', `${reg.host}/library/busybox`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stdout, `${reg.host}/library/busybox:latest\n`);
    for (const t of ['1', '2']) assert.equal((await runImg(['--state', state, 'tag', `${reg.host}/library/busybox`, `${reg.host}/team/all:${t}`])).code, 0);

    const q = await runImg(['--state', state, 'push', '-q', `${reg.host}/team/all:1`]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, `${reg.host}/team/all:1\n`);

    const all = await runImg(['--state', state, 'push', '--all-tags', `${reg.host}/team/all`]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`^Pushing ${reg.host}/team/all:1\\.\\.\\.\\n[^]*Successfully pushed ${reg.host}/team/all:1\\nPushing ${reg.host}/team/all:2\\.\\.\\.\\n[^]*Successfully pushed ${reg.host}/team/all:2\\n$`));
    const tags = JSON.parse(execFileSync('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/team/all`], { encoding: 'utf8' })) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['1', '2']);
    const aq = await runImg(['--state', state, 'push', '-a', '-q', `${reg.host}/team/all`]);
    assert.equal(aq.stdout, `${reg.host}/team/all\n`);

    const tagged = await runImg(['--state', state, 'push', '-a', `${reg.host}/team/all:1`]);
    assert.equal(tagged.code, 1);
    assert.match(tagged.stderr, /^Error: tag can't be used with --all-tags\/-a/);
    const none = await runImg(['--state', state, 'push', '-a', `${reg.host}/team/none`]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, new RegExp(`^Error: An image does not exist locally with the tag: ${reg.host}/team/none`));
    const plat = await runImg(['--state', state, 'push', '--platform', 'linux/amd64', `${reg.host}/team/all:1`]);
    assert.equal(plat.code, 1);
    assert.match(plat.stderr, /^Error: img push does not support --platform: .* — drop --platform/);
    const allTagsPull = await runImg(['--state', state, 'pull', '-a', `${reg.host}/team/all`]);
    assert.equal(allTagsPull.code, 1);
    assert.match(allTagsPull.stderr, /^Error: img pull does not support --all-tags: img pull pulls one tag — pull each tag you need/);

    // docker login --username: the same as img's -u/--user.
    const env = { DOCKER_CONFIG: fresh('docker-') };
    const login = await runImg(['login', '--username', 'alice', '--password-stdin', secure.host], { env, input: 'wonderland' });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, 'Login Succeeded\n');
  });
});
