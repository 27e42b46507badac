// The Kubernetes manifests in deploy/kubernetes, read as kubectl would read
// them (test/helpers/yaml.ts), hold what img needs in a pod — and nothing it
// must not have: seccomp and AppArmor unconfined, uid 1000, never privileged,
// no no_new_privs, SETUID/SETGID kept, the state dir on a volume, registry
// credentials from a docker config Secret — and build then push one image.
// README's "Running with Kubernetes" names the same files and Secret.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../helpers/cli';
import { parseYamlDocuments, type Yaml } from '../helpers/yaml';

type Obj = { [k: string]: Yaml };
const DIR = path.join(REPO, 'deploy', 'kubernetes');
const STATE = '/home/user/.local/share/img';

function obj(v: Yaml | undefined, what: string): Obj {
  assert.ok(v && typeof v === 'object' && !Array.isArray(v), `${what} is a mapping`);
  return v as Obj;
}
function list(v: Yaml | undefined, what: string): Obj[] {
  assert.ok(Array.isArray(v), `${what} is a list`);
  return (v as Yaml[]).map((x, i) => obj(x, `${what}[${i}]`));
}

function manifests(): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const doc of parseYamlDocuments(fs.readFileSync(path.join(DIR, f), 'utf8'))) {
      const m = obj(doc, f);
      assert.equal(typeof m.apiVersion, 'string', `${f}: apiVersion`);
      const name = obj(m.metadata, `${f}: metadata`).name;
      assert.equal(typeof name, 'string', `${f}: metadata.name`);
      out.set(`${m.kind as string}/${name as string}`, m);
    }
  }
  return out;
}

describe('deploy/kubernetes', () => {
  const all = manifests();

  it('the Job runs img as uid 1000, unconfined but never privileged, and keeps what newuidmap needs', () => {
    const job = all.get('Job/img-build')!;
    assert.ok(job, `a Job img-build among ${[...all.keys()].join(', ')}`);
    assert.equal(job.apiVersion, 'batch/v1');
    const template = obj(obj(job.spec, 'spec').template, 'template');
    const pod = obj(template.spec, 'pod spec');
    const podSec = obj(pod.securityContext, 'pod securityContext');
    assert.equal(podSec.runAsUser, 1000);
    assert.equal(pod.restartPolicy, 'Never');
    const [img] = list(pod.containers, 'containers');
    assert.equal(img.name, 'img');
    assert.match(String(img.image), /\/img:/);
    const sec = obj(img.securityContext, 'container securityContext');
    assert.notEqual(sec.privileged, true);
    assert.notEqual(sec.allowPrivilegeEscalation, false, 'no_new_privs would strip the id helpers of their file capabilities');
    assert.notEqual(podSec.runAsUser ?? sec.runAsUser, 0);
    assert.equal(obj(sec.seccompProfile, 'seccompProfile').type, 'Unconfined');
    assert.equal(obj(sec.appArmorProfile, 'appArmorProfile').type, 'Unconfined');
    // Kubernetes before 1.30 reads AppArmor from the annotation, keyed by the container name.
    assert.equal(obj(obj(template.metadata, 'template metadata').annotations, 'annotations')[`container.apparmor.security.beta.kubernetes.io/${img.name as string}`], 'unconfined');
    const dropped = (obj(sec.capabilities ?? {}, 'capabilities').drop ?? []) as Yaml[];
    for (const cap of ['ALL', 'SETUID', 'SETGID', 'CAP_SETUID', 'CAP_SETGID']) assert.ok(!dropped.includes(cap), `${cap} is not dropped`);
    if (sec.procMount !== undefined) assert.equal(sec.procMount, 'Unmasked');
  });

  it('the state dir is a volume, the registry credentials a docker config Secret, and the job builds then pushes $IMAGE', () => {
    const job = all.get('Job/img-build')!;
    const pod = obj(obj(obj(job.spec, 'spec').template, 'template').spec, 'pod spec');
    const [img] = list(pod.containers, 'containers');
    const volumes = new Map(list(pod.volumes, 'volumes').map((v) => [v.name as string, v]));
    const mounts = new Map(list(img.volumeMounts, 'volumeMounts').map((m) => [m.mountPath as string, m]));

    const state = volumes.get(mounts.get(STATE)?.name as string);
    assert.ok(state, `a volume at ${STATE}`);
    assert.ok('emptyDir' in state || 'persistentVolumeClaim' in state, 'emptyDir or a claim, not the container filesystem');

    const auth = mounts.get('/home/user/.docker');
    assert.ok(auth, 'docker config mounted at ~/.docker');
    assert.equal(auth.readOnly, true);
    const secret = obj(volumes.get(auth.name as string)!.secret, 'secret volume');
    assert.equal(secret.secretName, 'img-registry-auth');
    assert.deepEqual(list(secret.items, 'secret items'), [{ key: '.dockerconfigjson', path: 'config.json' }]);

    const env = new Map(list(img.env, 'env').map((e) => [e.name, e.value]));
    assert.ok(env.get('IMAGE') && env.get('CONTEXT'));
    const script = [...((img.command ?? []) as Yaml[]), ...((img.args ?? []) as Yaml[])].join(' ');
    assert.match(script, /img build -t "\$IMAGE" "\$CONTEXT"[\s\S]*img push "\$IMAGE"/);
    assert.match(script, /set -e/);

    const pvc = all.get('PersistentVolumeClaim/img-cache')!;
    assert.ok(pvc, 'cache-pvc.yaml offers a persistent state dir');
    assert.match(String(obj(obj(obj(pvc.spec, 'pvc spec').resources, 'resources').requests, 'requests').storage), /^\d+Gi$/);
  });

  it('README.md shows both ways to run img, with the files and names the manifests use', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const section = (title: string) => {
      const start = readme.indexOf(`### ${title}\n`);
      assert.ok(start >= 0, `README has "### ${title}"`);
      const end = readme.indexOf('\n### ', start + 4);
      return readme.slice(start, end < 0 ? undefined : end);
    };
    const docker = section('Running with Docker');
    for (const flag of ['--security-opt seccomp=unconfined', '--security-opt apparmor=unconfined', `:${STATE}`, '--security-opt systempaths=unconfined'])
      assert.ok(docker.includes(flag), `Docker section mentions ${flag}`);
    const k8s = section('Running with Kubernetes');
    for (const s of ['kubectl create secret docker-registry img-registry-auth', 'kubectl apply -f deploy/kubernetes/job.yaml', 'procMount: Unmasked', 'allowPrivilegeEscalation', 'cache-pvc.yaml'])
      assert.ok(k8s.includes(s), `Kubernetes section mentions ${s}`);
  });
});
