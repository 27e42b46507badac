// One pod run as the pod tests make it: `img doctor --format json`, then
// `img --debug build` of fixtures/multistage (RUN, COPY --from, COPY --chown)
// from the test registry to a rootfs tar, and the checks on that tree.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tarStream from 'tar-stream';
import { podVolume, POD_STATE, runPod, type PodVariant, type Volume } from './pod';

export const MULTISTAGE = path.join(__dirname, 'fixtures', 'multistage');

export interface DoctorJson {
  checks: { id: string; status: string; found: string; cost?: string; fix?: string }[];
  verdict: { builds: boolean; mapping: string; backend: string; proc: string };
}

export const row = (r: DoctorJson, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no ${id} row in ${JSON.stringify(r)}`);
  return c;
};

export interface PodRun {
  doctorCode: number;
  doctor: DoctorJson;
  doctorErr: string;
  buildCode: number;
  buildLog: string; // stderr: progress, WARN and DEBU lines
  buildOut: string;
  tar: string;
}

// `img` is how the pod runs img (argv prefix, env, the volumes it needs);
// `rootfs` a pod root other than the cached one (img's own image). Host
// directories made here are pushed onto `cleanup`.
export async function doctorAndBuild(o: {
  variant: PodVariant;
  owner: number;
  registry: string;
  img: { argv: string[]; env: Record<string, string>; volumes: Volume[] };
  rootfs?: string;
  cleanup: string[];
}): Promise<PodRun> {
  const state = podVolume('img-pod-state-');
  const out = podVolume('img-pod-out-');
  o.cleanup.push(state, out);
  const img = o.img.argv.join(' ');
  const script = [
    `${img} doctor --format json > out/doctor.json 2> out/doctor.err; echo $? > out/doctor.code`,
    `${img} --debug build --progress=plain --build-arg BASE=${o.registry}/library/busybox:latest --build-arg OWNER=${o.owner} ` +
      `-o type=tar,dest=out/rootfs.tar src > out/build.out 2> out/build.err; echo $? > out/build.code`,
  ].join('\n');
  const res = await runPod({
    variant: o.variant,
    rootfs: o.rootfs,
    argv: ['sh', '-c', script],
    env: o.img.env,
    volumes: [
      ...o.img.volumes,
      { host: state, container: POD_STATE },
      { host: out, container: '/home/user/out' },
      { host: MULTISTAGE, container: '/home/user/src', readonly: true },
    ],
  });
  assert.equal(res.code, 0, `pod: ${res.stderr}`);
  const read = (f: string) => fs.readFileSync(path.join(out, f), 'utf8');
  return {
    doctorCode: Number(read('doctor.code')),
    doctor: JSON.parse(read('doctor.json') || '{}') as DoctorJson,
    doctorErr: read('doctor.err'),
    buildCode: Number(read('build.code')),
    buildLog: read('build.err'),
    buildOut: read('build.out'),
    tar: path.join(out, 'rootfs.tar'),
  };
}

interface Entry {
  uid: number;
  gid: number;
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
        out.set(h.name.replace(/^\.\//, '').replace(/\/$/, ''), { uid: h.uid ?? -1, gid: h.gid ?? -1, body: Buffer.concat(chunks).toString() });
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

// The tree both stages leave, owned as the mapping allows; the later RUN sees the same owners.
export async function assertTree(tarFile: string, owner: number, freshProc: boolean): Promise<void> {
  const t = await readTar(tarFile);
  assert.equal(t.get('app/greeting.txt')?.body, 'hello from a pod\n');
  assert.deepEqual([t.get('app/data')?.uid, t.get('app/data')?.gid, t.get('app/data/made.txt')?.uid], [owner, owner, owner]);
  assert.equal(t.get('app/data/made.txt')?.body, 'made\n');
  assert.match(t.get('app/listing.txt')!.body, new RegExp(`^-rw-r--r-- +1 ${owner} +${owner} +5 .* made\\.txt$`, 'm'));
  const pid = Number(/pid=(\d+)/.exec(t.get('app/pid.txt')!.body)?.[1]);
  if (freshProc) assert.equal(pid, 1, 'a fresh /proc comes with its own PID namespace');
  else assert.ok(pid > 1, `shell pid ${pid}: no PID namespace of its own`);
}
