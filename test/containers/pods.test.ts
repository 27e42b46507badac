// img run the way a CI pod runs it (pod.ts: runc with Docker's defaults,
// uid 1000, masked /proc, no /dev/fuse, the state dir a volume): in each
// variant `img doctor` says what the pod allows and `img build` builds a
// multi-stage Dockerfile (RUN, COPY --from, COPY --chown) from the test
// registry, with the file tree and owners the mapping allows, and its output
// names the mapping, backend and /proc it used.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tarStream from 'tar-stream';
import { makeBusyboxImage } from '../fixtures/images';
import { startRegistry, type Registry } from '../fixtures/registry';
import { ensureRootfs, imgInPod, podSkipReason, podVolume, POD_STATE, POD_UID, runPod, type PodVariant } from './pod';

const CONTEXT = path.join(__dirname, 'fixtures', 'multistage');

interface Entry {
  uid: number;
  gid: number;
  type: string;
  body: string;
}

async function readTar(file: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(Buffer.from(c as Uint8Array));
      });
      stream.on('end', () => {
        out.set(h.name.replace(/^\.\//, '').replace(/\/$/, ''), { uid: h.uid ?? -1, gid: h.gid ?? -1, type: h.type ?? '', body: Buffer.concat(chunks).toString() });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  fs.createReadStream(file).pipe(extract);
  await done;
  return out;
}

interface Report {
  checks: { id: string; status: string; found: string; cost?: string; fix?: string }[];
  verdict: { builds: boolean; mapping: string; backend: string; proc: string };
}

describe('img in a pod', { skip: podSkipReason() }, () => {
  let registry: Registry;
  const volumes: string[] = [];
  before(async () => {
    ensureRootfs();
    registry = await startRegistry();
    await registry.seed('library/busybox', 'latest', await makeBusyboxImage());
  });
  after(async () => {
    await registry?.stop();
    for (const v of volumes) fs.rmSync(v, { recursive: true, force: true });
  });

  // One pod per variant: `img doctor --format json`, then `img --debug build`.
  async function doctorAndBuild(variant: PodVariant, owner: number) {
    const state = podVolume('img-pod-state-');
    const out = podVolume('img-pod-out-');
    volumes.push(state, out);
    const cli = imgInPod();
    const img = cli.argv.join(' ');
    const script = [
      `${img} doctor --format json > out/doctor.json 2> out/doctor.err; echo $? > out/doctor.code`,
      `${img} --debug build --progress=plain --build-arg BASE=${registry.host}/library/busybox:latest --build-arg OWNER=${owner} ` +
        `-o type=tar,dest=out/rootfs.tar src > out/build.out 2> out/build.err; echo $? > out/build.code`,
    ].join('\n');
    const res = await runPod({
      variant,
      argv: ['sh', '-c', script],
      env: cli.env,
      volumes: [
        ...cli.volumes,
        { host: state, container: POD_STATE },
        { host: out, container: '/home/user/out' },
        { host: CONTEXT, container: '/home/user/src', readonly: true },
      ],
    });
    assert.equal(res.code, 0, `pod: ${res.stderr}`);
    const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');
    return {
      doctorCode: Number(read('doctor.code')),
      doctor: JSON.parse(read('doctor.json') || '{}') as Report,
      doctorErr: read('doctor.err'),
      buildCode: Number(read('build.code')),
      buildLog: read('build.err'),
      tar: path.join(out, 'rootfs.tar'),
    };
  }

  const row = (r: Report, id: string) => r.checks.find((c) => c.id === id)!;

  // The tree both stages leave, owned as the mapping allows; the later RUN sees the same owners.
  async function assertTree(tarFile: string, owner: number, freshProc: boolean) {
    const t = await readTar(tarFile);
    assert.equal(t.get('app/greeting.txt')?.body, 'hello from a pod\n');
    assert.deepEqual([t.get('app/data')?.uid, t.get('app/data')?.gid, t.get('app/data/made.txt')?.uid], [owner, owner, owner]);
    assert.equal(t.get('app/data/made.txt')?.body, 'made\n');
    assert.match(t.get('app/listing.txt')!.body, new RegExp(`^-rw-r--r-- +1 ${owner} +${owner} +5 .* made\\.txt$`, 'm'));
    const pid = Number(/pid=(\d+)/.exec(t.get('app/pid.txt')!.body)?.[1]);
    if (freshProc) assert.equal(pid, 1, 'a fresh /proc comes with its own PID namespace');
    else assert.ok(pid > 1, `shell pid ${pid}: no PID namespace of its own`);
  }

  it('Docker defaults (file-capability id helpers, masked /proc): subordinate ranges, overlayfs, host /proc', async () => {
    const r = await doctorAndBuild('default', 1000);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'host' });
    assert.match(row(r.doctor, 'helpers').found, /newuidmap \(file capability cap_setuid\)/);
    assert.equal(row(r.doctor, 'proc').status, 'warn');
    assert.match(row(r.doctor, 'proc').fix!, /systempaths=unconfined.*procMount: Unmasked/);
    assert.equal(row(r.doctor, 'fuse').status, 'info', 'no /dev/fuse, and not needed');
    assert.match(row(r.doctor, 'runc').found, /a trial container ran; runc warns "cannot toggle freezer/);

    assert.equal(r.buildCode, 0, r.buildLog);
    assert.match(r.buildLog, /DEBU snapshotter auto: chose overlayfs/);
    assert.match(r.buildLog, /WARN this host does not allow mounting a fresh \/proc/);
    assert.doesNotMatch(r.buildLog, /WARN no subordinate ids/);
    // runc's own warnings are debug lines, never a step's output.
    assert.match(r.buildLog, /^DEBU runc img-[0-9a-f]+: warning: cannot toggle freezer/m);
    assert.doesNotMatch(r.buildLog, /^#\d+ [\d.]+ .*(freezer|lstat )/m);
    await assertTree(r.tar, 1000, false);
  });

  it('no subordinate ranges (empty /etc/subuid and /etc/subgid): single id, root-owned files build', async () => {
    const r = await doctorAndBuild('no-subids', 0);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'single id', backend: 'overlayfs', proc: 'host' });
    assert.equal(row(r.doctor, 'mapping').found, `single id: uid 0→${POD_UID}; gid 0→${POD_UID}`);
    assert.equal(row(r.doctor, 'subids').fix, 'as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 user');

    assert.equal(r.buildCode, 0, r.buildLog);
    assert.match(r.buildLog, /WARN no subordinate ids for user/);
    assert.match(r.buildLog, /DEBU snapshotter auto: chose overlayfs/);
    assert.match(r.buildLog, /WARN this host does not allow mounting a fresh \/proc/);
    await assertTree(r.tar, 0, false);
  });

  it('setuid-root id helpers (Debian\'s, as in the report): doctor names the refusal and the file-capability fix', async () => {
    const r = await doctorAndBuild('setuid-helpers', 0);
    const mapping = row(r.doctor, 'mapping');
    assert.match(row(r.doctor, 'helpers').found, /newuidmap \(setuid root\)/);
    assert.match(mapping.found, /newuidmap refused: newuidmap: write to uid_map failed: Operation not permitted/);
    assert.match(mapping.fix!, /CAP_SYS_ADMIN, absent from this container's bounding set.*setcap cap_setuid=ep \/usr\/bin\/newuidmap/);
  });

  it('--privileged: fresh /proc in a PID namespace, /dev/fuse', async () => {
    const r = await doctorAndBuild('privileged', 1000);
    assert.equal(r.doctorCode, 0, r.doctorErr);
    assert.deepEqual(r.doctor.verdict, { builds: true, mapping: 'subordinate ranges', backend: 'overlayfs', proc: 'fresh' });
    assert.equal(row(r.doctor, 'fuse').status, 'ok');
    assert.equal(r.buildCode, 0, r.buildLog);
    assert.doesNotMatch(r.buildLog, /WARN/);
    await assertTree(r.tar, 1000, true);
  });
});

