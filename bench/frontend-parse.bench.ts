// Micro-benchmarks of the Dockerfile text layer: parsing a 1,000-instruction
// Dockerfile, shell word expansion, and .dockerignore matching.
//   node --import tsx bench/frontend-parse.bench.ts
import Benchmark from 'benchmark';
import { parseDockerfile, expandWords, PatternMatcher } from '../lib/frontend/dockerfile/index';

const lines = ['# syntax=docker/dockerfile:1', 'FROM busybox AS base'];
for (let i = 0; i < 1000; i++) {
  switch (i % 5) {
    case 0:
      lines.push(`RUN --mount=type=cache,target=/c${i} echo ${i} && \\\n    ls -la /tmp/${i}`);
      break;
    case 1:
      lines.push(`ENV A${i}="v ${i}" B${i}=x`);
      break;
    case 2:
      lines.push(`COPY --chmod=0644 src/${i} /dst/${i}`);
      break;
    case 3:
      lines.push(`LABEL l${i}=v${i}`);
      break;
    default:
      lines.push(`RUN <<EOF\necho ${i}\nEOF`);
  }
}
const dockerfile = lines.join('\n') + '\n';
const env = new Map([
  ['A', 'hello world'],
  ['B', 'x'],
]);
const matcher = new PatternMatcher(['node_modules', '**/*.log', '!keep.log', 'build/**', 'docs/*.md']);
const paths = Array.from({ length: 1000 }, (_, i) => `src/pkg${i % 37}/dir${i % 11}/file${i}.${i % 3 ? 'ts' : 'log'}`);

new Benchmark.Suite()
  .add('parseDockerfile (1,000 instructions)', () => parseDockerfile(dockerfile))
  .add('expandWords (4 expansions)', () => expandWords('pre${A}post "$B" ${C:-default} ${A%% *}', env))
  .add('PatternMatcher.matches x1000', () => {
    for (const p of paths) matcher.matches(p);
  })
  .on('cycle', (e: Benchmark.Event) => console.log(String(e.target)))
  .run();
