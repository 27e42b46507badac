// Parse + convert of a generated 1,000-instruction multi-stage Dockerfile.
// Run: node --import tsx bench/frontend-convert.ts
import Benchmark from 'benchmark';
import { dockerfileToGraph, type ConvertOptions } from '../lib/frontend/dockerfile/convert';
import type { ImageConfig } from '../lib/images/types';

function generate(instructions: number, stages: number): string {
  const lines: string[] = ['# syntax=docker/dockerfile:1', 'ARG BASE=busybox:latest', 'ARG VERSION=1.0'];
  const per = Math.floor(instructions / stages);
  for (let s = 0; s < stages; s++) {
    lines.push(`FROM \${BASE} AS s${s}`);
    lines.push('ARG VERSION');
    for (let i = 2; i < per; i++) {
      switch (i % 8) {
        case 0: lines.push(`RUN --mount=type=cache,target=/cache/${s} echo "step ${i} $VERSION" > /tmp/f${i}`); break;
        case 1: lines.push(`ENV K${i}=v${i} PATH_${i}=/opt/${i}`); break;
        case 2: lines.push(`COPY src/${s}/file${i}.txt /app/${i}/`); break;
        case 3: lines.push(`WORKDIR /w/${i}`); break;
        case 4: lines.push(`LABEL l${i}="label ${i}"`); break;
        case 5: lines.push(s > 0 ? `COPY --from=s${s - 1} /tmp/f${i - 5} /prev/` : `RUN true ${i}`); break;
        case 6: lines.push(`EXPOSE ${8000 + i}/tcp`); break;
        default: lines.push(`RUN <<EOF\nset -e\necho ${i}\nEOF`);
      }
    }
  }
  lines.push('CMD ["sh"]');
  return lines.join('\n') + '\n';
}

const text = generate(1000, 10);
const config: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
  rootfs: { type: 'layers', diff_ids: [] },
  history: [],
};
const opts: ConvertOptions = {
  buildArgs: { VERSION: '2.0' },
  resolveImageConfig: async (ref) => ({ ref, digest: 'sha256:' + 'a'.repeat(64), config }),
};

(async () => {
  const g = await dockerfileToGraph(text, opts);
  console.log(`Dockerfile: ${text.split('\n').length} lines; graph: ${Object.keys(g.vertices).length} vertices`);
  new Benchmark.Suite()
    .add('parse+convert 1000 instructions / 10 stages', {
      defer: true,
      fn: (d: { resolve(): void }) => {
        dockerfileToGraph(text, opts).then(() => d.resolve(), (e) => { console.error(e); process.exit(1); });
      },
    })
    .on('cycle', (e: { target: Benchmark }) => {
      const t = e.target;
      console.log(`${String(t)}; mean ${(t.stats.mean * 1000).toFixed(2)} ms`);
    })
    .on('complete', async () => {
      // CPU time per op is steadier than wall time on a shared, loaded machine.
      const n = 20;
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) await dockerfileToGraph(text, opts);
      const used = process.cpuUsage(before);
      console.log(`cpu time per parse+convert: ${((used.user + used.system) / 1000 / n).toFixed(2)} ms (${n} runs)`);
    })
    .run({ async: true });
})();
