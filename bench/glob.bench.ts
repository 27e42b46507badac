// Micro-benchmarks of the one glob module (lib/util/glob.ts) where users feel it:
// ${VAR#p} ${VAR%p} ${VAR/p/r} on a 3,000-character value (one pass each,
// whatever the pattern), and compiling + matching .dockerignore-style patterns.
//   node --import tsx bench/glob.bench.ts
import Benchmark from 'benchmark';
import { expandWord } from '../lib/frontend/dockerfile/shell';
import { compileGlob } from '../lib/util/glob';

const value = Array.from({ length: 300 }, (_, i) => `dir${String(i).padStart(3, '0')}/`).join('').slice(0, 3000);
const env = new Map([['V', value]]);
const patterns = ['**/*.log', 'build/**', 'src/*/gen/[a-f]*.go', 'docs/*.md', '**/node_modules'];
const paths = Array.from({ length: 1000 }, (_, i) => `src/pkg${i % 37}/gen/f${i}.${i % 3 ? 'go' : 'log'}`);

const suite = new Benchmark.Suite();
for (const w of ['${V#*/}', '${V##*/}', '${V%/*}', '${V%%/*}', '${V//dir*7/x}', '${V/*x*y/z}', '${V//d*y/z}', '${V##*a*a*a*a*a*b}']) {
  suite.add(`${w} (3,000 chars)`, () => expandWord(w, env));
}
suite
  .add('compileGlob x5 + matches x1000 (doubleStar)', () => {
    const globs = patterns.map((p) => compileGlob(p, { doubleStar: true }));
    for (const p of paths) for (const g of globs) g.matchesPathOrParent(p);
  })
  .on('cycle', (e: Benchmark.Event) => console.log(String(e.target)))
  .run();
