// The map in docs/architecture.md, held against the code: every import, export-from,
// import() and require() in lib/**/*.ts is checked against the table of allowed
// room → room directions below. Change the table, the map and the code together,
// and say why in the commit. (The frontend's bundle test beside this one checks
// the same purity from the other side: it bundles the parser for a neutral platform.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ErrorCodes } from '../lib/util/errors';

const ROOT = path.resolve(__dirname, '..');
const LIB = path.join(ROOT, 'lib');

// Room → the rooms it may import (besides itself). `util` may be imported from
// anywhere and imports only itself; `host` sits below every engine room. Rows
// are in import order: a room imports only rooms in rows below its own.
const ALLOWED: Record<string, readonly string[]> = {
  cli: ['builder', 'doctor', 'export', 'import', 'state', 'registry', 'images', 'snapshot', 'exec', 'archive', 'progress', 'host'],
  builder: ['frontend', 'graph', 'solver', 'cache', 'export', 'state', 'registry', 'images', 'content', 'snapshot', 'exec', 'archive', 'progress', 'host'],
  doctor: ['registry', 'snapshot', 'exec', 'host'],
  frontend: ['graph', 'images'],
  solver: ['graph', 'cache', 'export', 'state', 'registry', 'images', 'content', 'snapshot', 'exec', 'archive', 'progress', 'host'],
  cache: ['export', 'registry', 'images', 'content', 'snapshot'],
  graph: ['images'],
  export: ['state', 'images', 'content', 'snapshot', 'exec', 'archive', 'progress', 'host'],
  import: ['state', 'images', 'content', 'archive'],
  registry: ['state', 'images', 'content', 'archive', 'progress', 'host'],
  state: ['images', 'content', 'snapshot', 'host'],
  snapshot: ['images', 'content', 'archive', 'host'],
  exec: ['host'],
  archive: ['host'],
  images: ['content'],
  content: ['host'],
  progress: [],
  host: [],
  util: [],
};
// lib/index.ts is the package's public API: it re-exports from every room.
const PUBLIC_API = 'index.ts';
// The OCI vocabulary (Digest, Descriptor, Manifest, ...): types every room speaks,
// importing nothing itself, so rooms below `images` may use them too.
const SHARED_FILES = new Set(['images/types.ts']);
// Rooms that must run in a browser or WebAssembly host: they, and every module
// they reach, import nothing but relative TypeScript (no node:, no packages).
const PURE_ROOMS = ['frontend', 'graph'];
// Lazy loading happens only where a command starts.
const LAZY_OK = 'cli/commands/';

interface ImportSite {
  file: string; // relative to lib/
  line: number;
  spec: string;
  dynamic: boolean; // import() call or require()
}

function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

// Every module specifier in a file, from its syntax tree (strings and comments
// that look like imports, e.g. the deflate worker's source in pgzip.ts, are not).
function importsOf(rel: string): ImportSite[] {
  const text = fs.readFileSync(path.join(LIB, rel), 'utf8');
  const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true);
  const out: ImportSite[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, dynamic: boolean) => {
    if (!spec || !ts.isStringLiteralLike(spec)) return;
    out.push({ file: rel, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, spec: spec.text, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, false);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression, false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, false);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node, node.arguments[0], true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

// The lib/-relative .ts file a relative specifier names.
function resolve(from: string, spec: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [`${base}.ts`, `${base}/index.ts`]) if (fs.existsSync(path.join(LIB, candidate))) return candidate;
  return `${base}.ts`; // missing: typecheck reports it; the room is still known
}

const roomOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : rel);
const where = (s: ImportSite): string => `lib/${s.file}:${s.line} imports '${s.spec}'`;

const FILES = tsFiles(LIB);
const IMPORTS = new Map(FILES.map((f) => [f, importsOf(f)]));

test('every room in lib/ has a row in the table and a line in docs/architecture.md', () => {
  const map = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const rooms = fs.readdirSync(LIB, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  const problems: string[] = [];
  for (const room of rooms) {
    if (!(room in ALLOWED)) problems.push(`lib/${room}/ has no row in ALLOWED (test/architecture.test.ts)`);
    if (!new RegExp(`^ ${room}/`, 'm').test(map)) problems.push(`lib/${room}/ is not in the Rooms map of docs/architecture.md`);
  }
  for (const room of Object.keys(ALLOWED)) if (!rooms.includes(room)) problems.push(`ALLOWED names "${room}" but lib/${room}/ does not exist`);
  const loose = FILES.filter((f) => !f.includes('/') && f !== PUBLIC_API);
  for (const f of loose) problems.push(`lib/${f} belongs to no room: move it into one`);
  assert.deepEqual(problems, []);
});

test('the import table in docs/architecture.md is this table', () => {
  const map = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const documented: Record<string, string[]> = {};
  for (const m of map.matchAll(/^\| `([a-z]+)\/` \| ([^|]*) \|$/gm)) {
    documented[m[1]] = m[2].trim() === '—' ? [] : m[2].split(',').map((r) => r.trim());
  }
  const sorted = (t: Record<string, readonly string[]>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, [...v].sort()]).sort());
  assert.deepEqual(sorted(documented), sorted(ALLOWED), 'docs/architecture.md "Import directions" and ALLOWED disagree: change both');
  // One direction, no cycles: every room a row allows comes in a later row.
  const order = Object.keys(ALLOWED);
  const upward = order.flatMap((room, i) => ALLOWED[room].filter((to) => order.indexOf(to) <= i).map((to) => `${room} → ${to}`));
  assert.deepEqual(upward, [], 'rows must be in import order');
});

test('imports follow the allowed room → room directions', () => {
  const violations: string[] = [];
  for (const [file, sites] of IMPORTS) {
    const from = roomOf(file);
    if (file === PUBLIC_API) continue;
    for (const s of sites) {
      if (!s.spec.startsWith('.')) continue;
      const target = resolve(file, s.spec);
      const to = roomOf(target);
      if (to === from || SHARED_FILES.has(target)) continue;
      if (to === 'util' && from !== 'util') continue;
      const allowed = ALLOWED[from] ?? [];
      if (!allowed.includes(to)) {
        const rule =
          from === 'util'
            ? 'util imports only util'
            : from === 'host'
              ? 'host imports no engine room (only util)'
              : `${from} may import ${allowed.length ? allowed.join(', ') : 'no other room'} and util`;
        violations.push(`${where(s)} (room ${to}): ${rule}`);
      }
    }
  }
  assert.deepEqual(violations, [], `\n${violations.join('\n')}\n`);
});

test('frontend and graph, and everything they reach, import no node: module and no package', () => {
  const violations: string[] = [];
  const seen = new Set<string>();
  const pending = FILES.filter((f) => PURE_ROOMS.includes(roomOf(f))).map((f) => ({ file: f, via: [] as string[] }));
  while (pending.length) {
    const { file, via } = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const s of IMPORTS.get(file) ?? []) {
      if (s.spec.startsWith('.')) pending.push({ file: resolve(file, s.spec), via: [...via, file] });
      else {
        const chain = via.length ? ` (reached from lib/${via.join(' → lib/')})` : '';
        violations.push(`${where(s)}${chain}: ${PURE_ROOMS.join(' and ')} must bundle for a neutral platform`);
      }
    }
  }
  assert.deepEqual(violations, [], `\n${violations.join('\n')}\n`);
});

// (Packages and node: modules may be loaded on first use where the file says why:
// node:sea in host/index.ts.)
test('rooms import each other statically; lazy import()/require() only where a command starts', () => {
  const violations: string[] = [];
  for (const [file, sites] of IMPORTS) {
    if (file.startsWith(LAZY_OK)) continue;
    for (const s of sites) {
      if (s.dynamic && s.spec.startsWith('.')) violations.push(`${where(s)} lazily: import it at the top of the file (lazy loading belongs in lib/${LAZY_OK})`);
    }
  }
  assert.deepEqual(violations, [], `\n${violations.join('\n')}\n`);
});

test('the errors table in docs/architecture.md lists the catalogue, every code once', () => {
  const map = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const documented = [...map.matchAll(/^\| `\w+`[^|]*\| `(IMG_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  const catalogue = Object.keys(ErrorCodes).filter((c) => c !== 'IMG_ERR').sort();
  assert.deepEqual(documented, catalogue, 'docs/architecture.md "Errors" and lib/util/errors.ts ErrorCodes disagree');
});
