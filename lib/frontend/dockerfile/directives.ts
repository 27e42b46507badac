// Parser directives: `# name=value` comment lines at the very top of a
// Dockerfile (Dockerfile reference, "Parser directives"):
// - only before the first instruction, empty line or ordinary comment; after
//   that, directive-looking lines are plain comments;
// - names are case-insensitive; whitespace around name, '=' and value is free;
// - an unknown name is a comment and ends directive parsing;
// - a known directive given twice is an error; no line continuation.

import type { ParsedDockerfile } from './ast';
import { isSpaceCode } from './shell';

export const KNOWN_DIRECTIVES = ['syntax', 'escape', 'check'] as const;

// `#name=value` with optional whitespace (Go's \s: tab, LF, FF, CR, space).
// Trailing whitespace is trimmed first, so the match is a single linear pass.
// Right after the '#', any Unicode space is skipped (BuildKit trims with unicode.IsSpace).
const reDirective = /^([a-zA-Z][a-zA-Z0-9]*)[ \t\f\r]*=[ \t\f\r]*(.+)$/;

// `{name, value}` when the line has directive shape (name lower-cased), else undefined.
export function matchDirective(line: string): { name: string; value: string } | undefined {
  if (!line.startsWith('#')) return undefined;
  let start = 1;
  while (start < line.length && isSpaceCode(line.charCodeAt(start))) start++;
  let end = line.length;
  while (end > start && ' \t\f\r'.includes(line[end - 1])) end--;
  const m = reDirective.exec(line.slice(start, end));
  if (!m) return undefined;
  return { name: m[1].toLowerCase(), value: m[2] };
}

// How BuildKit picks the frontend (parser.DetectSyntax): after a UTF-8 BOM and
// an optional `#!` first line, the `# syntax=` directive; else `// syntax=`
// lines; else a whole-file JSON object's "syntax" string. `ref` is the value up
// to its first space (the rest are frontend options); `line` is 1-based (0 for JSON
// without a shebang line, as BuildKit reports it).
export function detectSyntax(text: string): { ref: string; cmdline: string; line: number } | undefined {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let line0 = 0;
  const nl = text.indexOf('\n');
  if ((nl < 0 ? text : text.slice(0, nl)).startsWith('#!')) {
    text = nl < 0 ? '' : text.slice(nl + 1);
    line0 = 1;
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  for (const prefix of ['#', '//']) {
    const seen = new Set<string>();
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i].startsWith(prefix)) break;
      let start = prefix.length;
      while (start < lines[i].length && isSpaceCode(lines[i].charCodeAt(start))) start++;
      let end = lines[i].length;
      while (end > start && ' \t\f\r\n'.includes(lines[i][end - 1])) end--;
      const m = reDirective.exec(lines[i].slice(start, end));
      if (!m) break;
      const name = m[1].toLowerCase();
      if (!isKnownDirective(name) || seen.has(name)) break;
      seen.add(name);
      if (name === 'syntax') {
        const sp = m[2].indexOf(' ');
        return { ref: sp < 0 ? m[2] : m[2].slice(0, sp), cmdline: m[2], line: line0 + i + 1 };
      }
    }
  }
  const t = text.trim();
  if (t.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(t);
      if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).syntax === 'string') {
        const ref = (v as Record<string, string>).syntax;
        return { ref, cmdline: ref, line: line0 };
      }
    } catch {
      // not JSON
    }
  }
  return undefined;
}

export function isKnownDirective(name: string): boolean {
  return (KNOWN_DIRECTIVES as readonly string[]).includes(name);
}

// ---- # syntax= ----

// What a `# syntax=` line asks for, when it names the Dockerfile frontend that
// img builds in (docker/dockerfile, any 1.x tag, stable or labs, optionally pinned by digest).
export interface SyntaxInfo {
  image: string; // as written
  version?: [number, number, number]; // undefined: "latest"/"labs"/no tag — the newest
  labs: boolean;
  digest?: string;
}

const FRONTEND_NAMES = new Set([
  'docker/dockerfile',
  'docker.io/docker/dockerfile',
  'index.docker.io/docker/dockerfile',
  'registry-1.docker.io/docker/dockerfile',
  'docker/dockerfile-upstream',
  'docker.io/docker/dockerfile-upstream',
]);

// The frontend version img implements (the current docs' syntax).
export const BUILTIN_FRONTEND_VERSION: [number, number, number] = [1, 20, 0];

// undefined when the image is not the Dockerfile frontend (the caller reports that).
export function resolveSyntax(value: string): SyntaxInfo | undefined {
  // `docker/dockerfile:1 opts…`: the image is the part before the first space (BuildKit's DetectSyntax)
  let ref = value.trim();
  if (ref.includes(' ')) ref = ref.slice(0, ref.indexOf(' '));
  const image = ref;
  let digest: string | undefined;
  const at = ref.indexOf('@');
  if (at >= 0) {
    digest = ref.slice(at + 1);
    ref = ref.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  }
  let name = ref;
  let tag = 'latest';
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) {
    name = ref.slice(0, colon);
    tag = ref.slice(colon + 1);
  }
  if (!FRONTEND_NAMES.has(name.toLowerCase())) return undefined;
  if (tag === 'latest' || tag === 'master') return { image, labs: false, digest };
  if (tag === 'labs' || tag === 'master-labs' || tag === 'experimental') return { image, labs: true, digest };
  // 1, 1.7, 1.7.1, with optional -rcN and -labs / -experimental suffixes
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-rc\d+)?(-labs|-experimental)?$/.exec(tag);
  if (!m || m[1] !== '1') return undefined;
  const labs = m[4] !== undefined;
  if (m[2] === undefined) return { image, labs, digest }; // "1": newest 1.x
  return { image, version: [1, Number(m[2]), Number(m[3] ?? 0)], labs, digest };
}

// The `# syntax=` frontend a parsed file asked for (undefined when none).
export function syntaxOf(parsed: ParsedDockerfile): SyntaxInfo | undefined {
  const d = parsed.directives.find((x) => x.name === 'syntax');
  return d ? resolveSyntax(d.value) : undefined;
}

// ---- # check= ----

// `# check=skip=A,B;error=true;experimental=C` (build checks). Rule names are
// exact, as BuildKit's; unknown keys are ignored.
export interface CheckConfig {
  skip: string[]; // rule names, or ['all']
  error: boolean;
  experimental: string[]; // experimental rules to run, or ['all']
}

export function parseCheckDirective(value: string): CheckConfig {
  const out: CheckConfig = { skip: [], error: false, experimental: [] };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip') out.skip = list(v);
    else if (key === 'error') out.error = ['1', 't', 'true'].includes(v.toLowerCase());
    else if (key === 'experimental') out.experimental = list(v);
  }
  return out;
}
