// deploy/kubernetes/cache-jobs.yaml: two Jobs sharing one registry cache. Read as
// kubectl reads it, its pods carry job.yaml's security settings and an empty
// state dir each; then the Jobs' own scripts run here, one after the other, as
// two pods would (two fresh state dirs, the test registry, a local context): the
// first exports the cache, the second builds from it without running a step.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseCacheFrom, parseCacheTo } from '../../lib/builder/cache';
import { makeBusyboxImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { CLI_MAIN, REPO } from '../helpers/cli';
import { cleanup, rootlessUser, runAsUser, skipUnlessRootless, tempDir, TSX } from '../helpers/rootless';
import { parseYamlDocuments, type Yaml } from '../helpers/yaml';

type Obj = { [k: string]: Yaml };
const DIR = path.join(REPO, 'deploy', 'kubernetes');
const docs = (file: string) => parseYamlDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')) as Obj[];
const container = (job: Obj): Obj => ((((job.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0];
const podSpec = (job: Obj): Obj => ((job.spec as Obj).template as Obj).spec as Obj;
const script = (job: Obj): string => ((container(job).args as string[]) ?? []).join('\n');
const envOf = (job: Obj): Map<string, string> => new Map((container(job).env as Obj[]).map((e) => [e.name as string, e.value as string]));

describe('deploy/kubernetes/cache-jobs.yaml', () => {
  const jobs = docs('cache-jobs.yaml');
  const [reference] = docs('job.yaml');

  it('two Jobs, each pod with an empty state dir and job.yaml\'s pod settings, reading and writing one cache ref', () => {
    assert.deepEqual(jobs.map((j) => `${j.kind as string}/${(j.metadata as Obj).name as string}`), ['Job/img-build-main', 'Job/img-build-branch']);
    const { procMount: _p, ...refSec } = container(reference).securityContext as Obj;
    const caches = new Set<string>();
    for (const job of jobs) {
      assert.deepEqual(container(job).securityContext, refSec, 'the same container securityContext as job.yaml');
      assert.deepEqual(podSpec(job).securityContext, podSpec(reference).securityContext);
      const state = (podSpec(job).volumes as Obj[]).find((v) => v.name === 'state')!;
      assert.deepEqual(state.emptyDir, {}, 'a pod starts with an empty state dir: the cache travels through the registry');
      const env = envOf(job);
      caches.add(env.get('CACHE')!);
      // The flags, with $CACHE substituted, are valid for img's own parsers.
      const text = script(job).replaceAll('$CACHE', env.get('CACHE')!);
      const from = /--cache-from "([^"]+)"/.exec(text)![1];
      const to = /--cache-to "([^"]+)"/.exec(text)![1];
      assert.deepEqual(parseCacheFrom(from), { type: 'registry', ref: env.get('CACHE') });
      assert.equal(parseCacheTo(to).mode, 'max');
      assert.match(text, /img build -t "\$IMAGE" --push/);
    }
    assert.equal(caches.size, 1, 'one cache shared by both');
  });

  describe('their scripts, run as two pods against the test registry', { skip: skipUnlessRootless(), timeout: 300_000 }, () => {
    let reg: Registry | undefined;
    let root: string | undefined;
    after(async () => {
      await reg?.stop();
      if (root) await cleanup(root);
    });

    it('the second Job builds from the first one\'s cache: every step CACHED', async () => {
      reg = await startRegistry();
      await reg.seed('library/busybox', 'latest', await makeBusyboxImage());
      root = tempDir('img-cache-jobs-');
      const ctx = path.join(root, 'ctx');
      fs.mkdirSync(ctx);
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${reg.host}/library/busybox\nCOPY app.txt /app.txt\nRUN wc -c /app.txt > /size.txt\n`);
      fs.writeFileSync(path.join(ctx, 'app.txt'), 'the app\n');
      const u = rootlessUser()!;
      if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, ctx]);
      const outputs: string[] = [];
      for (const job of jobs) {
        const name = (job.metadata as Obj).name as string;
        // `img` in the pod's PATH, with this pod's own (empty) state dir.
        const bin = path.join(root, `${name}-bin`);
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, 'img'), `#!/bin/sh\nexec ${process.execPath} --import ${TSX} ${CLI_MAIN} -s ${path.join(root, `${name}-state`)} "$@"\n`, { mode: 0o755 });
        const env = { ...Object.fromEntries(envOf(job)), IMAGE: `${reg.host}/team/${name}:1`, CACHE: `${reg.host}/team/app:buildcache`, CONTEXT: ctx };
        const res = await runAsUser(['sh', '-c', script(job)], { env: { ...env, PATH: `${bin}:${process.env.PATH}` } });
        assert.equal(res.code, 0, res.stderr);
        outputs.push(res.stderr);
      }
      assert.match(outputs[0], /WARN cannot import cache from .*buildcache/, 'the first run finds no cache yet');
      assert.match(outputs[0], /#\d+ \[2\/3\] COPY app.txt[\s\S]*#\d+ DONE/);
      for (const step of ['[1/3] FROM', '[2/3] COPY app.txt', '[3/3] RUN wc -c']) {
        assert.match(outputs[1], new RegExp(`#(\\d+) ${step.replace(/[[\]/]/g, '\\$&')}.*\\n(?:.*\\n)*?#\\1 CACHED`), `${step} is CACHED in the second Job`);
      }
    });
  });
});
