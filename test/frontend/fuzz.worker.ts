// Fuzz worker (see fuzz.test.ts): parses random and mutated Dockerfiles,
// expands their words, and reports after every case so the parent can tell a
// hang (no report) from slowness. Any error other than the frontend's own
// error types is reported as a failure with the input that caused it.
import { parentPort, workerData } from 'node:worker_threads';
import {
  parseDockerfile,
  expandWord,
  expandWords,
  parseDockerignore,
  PatternMatcher,
  DockerfileError,
  ShellExpansionError,
} from '../../lib/frontend/dockerfile/index';

const { seeds, cases, seed } = workerData as { seeds: string[]; cases: number; seed: number };

// mulberry32: small deterministic PRNG
let state = seed >>> 0;
function rand(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number): number => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

const TOKENS = [
  '\\', '`', '\n', '\r\n', ' ', '\t', '"', "'", '$', '${', '}', '{', ':-', ':+', ':?', '?', '#', '##', '%', '%%',
  '/', '//', '[', ']', '<<', '<<-', 'EOF', "'EOF'", '3<<', '--', '--from=', '--mount=', '--link', '=', ',', '*',
  '**', '!', 'é', '日本', '\ufeff', '\u00a0', '\u2028', 'a', 'x y', '["a", "b"]', '[1]', '# escape=`', '# syntax=',
  'docker/dockerfile:1', 'AS', 'as', 'NONE', 'CMD', '\0',
];
const KEYWORDS = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER',
  'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'run', 'Copy', 'RUNN', '#', '',
];

function randomText(): string {
  const lines: string[] = [];
  const n = 1 + int(12);
  for (let i = 0; i < n; i++) {
    let line = pick(KEYWORDS);
    const m = int(8);
    for (let j = 0; j < m; j++) line += (rand() < 0.5 ? ' ' : '') + pick(TOKENS);
    lines.push(line);
  }
  return lines.join(rand() < 0.1 ? '\r\n' : '\n');
}

function mutate(text: string): string {
  let s = text;
  const edits = 1 + int(6);
  for (let e = 0; e < edits; e++) {
    const at = int(s.length + 1);
    switch (int(6)) {
      case 0: // insert a token
        s = s.slice(0, at) + pick(TOKENS) + s.slice(at);
        break;
      case 1: // delete a range
        s = s.slice(0, at) + s.slice(Math.min(s.length, at + 1 + int(20)));
        break;
      case 2: {
        // duplicate a line
        const ls = s.split('\n');
        const k = int(ls.length);
        ls.splice(k, 0, ls[k]);
        s = ls.join('\n');
        break;
      }
      case 3: {
        // swap two lines
        const ls = s.split('\n');
        const a = int(ls.length);
        const b = int(ls.length);
        [ls[a], ls[b]] = [ls[b], ls[a]];
        s = ls.join('\n');
        break;
      }
      case 4: // replace a character with a random code unit
        s = s.slice(0, at) + String.fromCharCode(int(0x3000)) + s.slice(at + 1);
        break;
      default: // truncate
        s = s.slice(0, at);
    }
  }
  return s;
}

const env = new Map([
  ['A', 'a b'],
  ['EMPTY', ''],
  ['HOME', '/root'],
]);

function check(text: string): void {
  try {
    const p = parseDockerfile(text, { filename: 'fuzz.Dockerfile' });
    let last = 0;
    for (const ins of p.instructions) {
      if (!(ins.startLine >= 1 && ins.endLine >= ins.startLine && ins.startLine > last)) {
        throw new Error(`bad line numbers ${ins.startLine}-${ins.endLine} after ${last}`);
      }
      last = ins.endLine;
      for (const word of [...ins.args, ...ins.flags.map((f) => f.value ?? '')]) {
        for (const escapeToken of ['\\', '`'] as const) {
          try {
            expandWord(word, env, { escapeToken });
            expandWords(word, env, { escapeToken });
          } catch (e) {
            if (!(e instanceof ShellExpansionError)) throw e;
          }
        }
      }
    }
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
    if (!(e.line >= 0) || !e.message.startsWith(`fuzz.Dockerfile:${e.line}: `)) throw new Error(`malformed error: ${e.message}`);
  }
  try {
    new PatternMatcher(parseDockerignore(text)).matches('a/b/c');
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
  }
}

const GLOB = ['*', '**', '?', '/', '[', ']', '^', '!', '-', '\\', 'a', 'b', '.', '#', ' ', 'é'];
function randomWord(alphabet: readonly string[], n: number): string {
  let s = '';
  for (let j = 0; j < n; j++) s += pick(alphabet);
  return s;
}

// Random .dockerignore patterns against random paths, and random words for the expander.
function checkPieces(): void {
  const patterns = Array.from({ length: 1 + int(4) }, () => randomWord(GLOB, 1 + int(8)));
  try {
    const m = new PatternMatcher(parseDockerignore(patterns.join('\n')));
    for (let k = 0; k < 5; k++) m.matches(randomWord(['a', 'b', '/', '.', 'é', '[', '*'], int(12)));
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
  }
  const word = randomWord(TOKENS, int(10));
  try {
    expandWords(word, env);
  } catch (e) {
    if (!(e instanceof ShellExpansionError)) throw e;
  }
}

for (let i = 0; i < cases; i++) {
  const text = i % 3 === 0 ? randomText() : mutate(seeds[int(seeds.length)]);
  try {
    check(text);
    checkPieces();
  } catch (e) {
    parentPort!.postMessage({ kind: 'fail', index: i, text, error: String((e as Error).stack ?? e) });
    process.exit(0);
  }
  parentPort!.postMessage({ kind: 'progress', index: i, text });
}
parentPort!.postMessage({ kind: 'done' });
