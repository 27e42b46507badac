// Child for rootless.test.ts: applies a layer file as the current (unprivileged) user with
// sameOwner=false, printing the result and the debug lines as JSON.
import * as fs from 'node:fs';
import { applyLayer } from '../../lib/archive/apply';

async function main(): Promise<void> {
  const [layer, root] = process.argv.slice(2);
  const debug: string[] = [];
  const r = await applyLayer(fs.createReadStream(layer), { root, sameOwner: false, onDebug: (m) => debug.push(m) });
  process.stdout.write(JSON.stringify({ ...r, debug }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err?.name}: ${err?.message}\n`);
  process.exit(1);
});
