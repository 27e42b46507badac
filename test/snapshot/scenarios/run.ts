// Runs inside the user namespace: container lifecycle edge cases for
// test/exec/run.test.ts. argv: <stateDir> <mode: abort|sigterm|noproc|nocmd|twice>
import * as fs from 'node:fs';
import { ContentStore } from '../../../lib/content/store';
import { runContainer } from '../../../lib/exec/run';
import { runcRoot } from '../../../lib/exec/runc';
import { enterUserNamespace } from '../../../lib/exec/userns';
import type { Manifest } from '../../../lib/images/types';
import { openSnapshotter, unpackImage } from '../../../lib/snapshot/index';
import { makeBusyboxImage } from '../../fixtures/images';
import { countSleepers } from './common';

const sleepers = countSleepers;

async function main() {
  await enterUserNamespace();
  const [state, mode] = process.argv.slice(2);
  const img = await makeBusyboxImage({ extraFiles: { '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' } });
  await img.writeToStore(state, 'busybox');
  const manifest = await new ContentStore(state).readJson<Manifest>(img.manifest.digest);
  const sn = await openSnapshotter(state, 'overlayfs');
  const top = await unpackImage(state, sn, manifest, img.config);
  const id = await sn.prepare(top, 'run test');
  const m = await sn.mount(id);
  const report: Record<string, unknown> = { runcRoot: runcRoot() };
  if (mode === 'twice') {
    // Two steps one after the other: where their /etc/resolv.conf and /etc/hosts come from.
    const binds: string[] = [];
    for (let i = 0; i < 2; i++) {
      let said = '';
      const res = await runContainer({
        rootfs: m.rootfs,
        args: ['/bin/sh', '-c', 'awk \'$5=="/etc/resolv.conf"||$5=="/etc/hosts"{print $5, $4}\' /proc/self/mountinfo'],
        env: [],
        cwd: '/',
        user: 'root',
        hostname: 'buildkitsandbox', // as the exec op gives every step
        network: 'default',
        mounts: [],
        stateDir: state,
        onOutput: (_s, c) => (said += c.toString()),
      });
      report[`exit${i}`] = res.exitCode;
      binds.push(said.trim());
    }
    await new Promise((r) => setTimeout(r, 200)); // the bundles are removed in the background
    report.binds = binds;
    report.execDir = fs.readdirSync(`${state}/tmp/exec`);
    await m.release();
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  const ac = new AbortController();
  let out = '';
  const p = runContainer({
    rootfs: m.rootfs,
    args:
      mode === 'nocmd' ? ['/no/such/program'] : ['/bin/sh', '-c', mode === 'noproc' ? 'sleep 1000 & echo pid=$$; echo started' : 'sleep 1000 & echo started; wait'],
    env: [],
    cwd: '/',
    user: 'root',
    network: 'default',
    mounts: [{ type: 'tmpfs', target: '/scratch' }],
    stateDir: state,
    runtimeLog: process.env.RUNTIME_LOG !== '0',
    signal: ac.signal,
    onOutput: (_s, c) => {
      out += c.toString();
      if (!out.includes('started')) return;
      if (mode === 'sigterm') {
        process.stdout.write(JSON.stringify({ mountsBefore: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(state)).length }) + '\n');
        process.kill(process.pid, 'SIGTERM');
      } else if (mode === 'abort') ac.abort();
    },
  });
  try {
    const res = await p;
    report.exit = res.exitCode;
    report.runtimeLog = res.runtimeLog;
  } catch (err) {
    report.error = `${(err as Error).name}: ${(err as Error).message}`;
  }
  report.out = out;
  report.sleepers = sleepers();
  await m.release();
  report.mountsLeft = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(state));
  report.runcState = fs.existsSync(runcRoot()) ? fs.readdirSync(runcRoot()) : [];
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
