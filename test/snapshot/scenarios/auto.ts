// Runs inside the user namespace (as the rootless test user): `auto` in two
// fresh state dirs on one filesystem, then in a third after the user's cached
// verdict was edited. Prints what each chose and whether it probed, as JSON
// for auto.test.ts. argv: <workDir> (XDG_CACHE_HOME points into it)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { enterUserNamespace } from '../../../lib/exec/userns';
import { detectBackend } from '../../../lib/snapshot/open';

(async () => {
  await enterUserNamespace();
  const [work] = process.argv.slice(2);
  const hostFile = path.join(process.env.XDG_CACHE_HOME!, 'img', 'snapshotter-auto.json');
  // A probe leaves its mark: it mounts under <state>/snapshots/tmp, which a cached verdict never creates.
  const choose = async (name: string) => {
    const state = path.join(work, name);
    fs.mkdirSync(state, { recursive: true });
    const backend = await detectBackend(state);
    return {
      backend,
      probed: fs.existsSync(path.join(state, 'snapshots', 'tmp')),
      stateVerdict: JSON.parse(fs.readFileSync(path.join(state, 'snapshots', 'auto.json'), 'utf8')),
    };
  };
  const first = await choose('a');
  const hostAfterFirst = JSON.parse(fs.readFileSync(hostFile, 'utf8'));
  const second = await choose('b');
  // The user's verdict is what a new state dir takes: edit it, and the next one follows.
  const edited = Object.fromEntries(Object.entries(hostAfterFirst).map(([k, v]) => [k, { ...(v as object), backend: 'native', reasons: { overlayfs: 'edited by the test' } }]));
  fs.writeFileSync(hostFile, JSON.stringify(edited));
  const third = await choose('c');
  // The state dir's own verdict still wins over the user's.
  const again = await choose('a');
  console.log(JSON.stringify({ first, hostAfterFirst, second, third, again }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
