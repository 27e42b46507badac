// Go text/template, the subset docker's --format users write, over JSON-shaped
// data (docker's structs as plain objects):
//   {{.Field.Sub}} {{.}} {{$}} {{$v}} {{$v.Field}} "strings" `raw` 42 true nil (pipelines) a | f
//   {{if}} {{else if}} {{else}} {{end}}, {{range}} (with `$v :=` / `$i, $v :=`, {{else}}), {{with}}
//   {{- and -}} trimming, {{/* comments */}}
//   functions: docker's json, join, split, upper, lower, title, pad, truncate; Go's index,
//   len, print, printf, println, not, and, or, eq, ne, lt, le, gt, ge
// Values print as fmt's %v does: slices "[a b]", maps "map[k:v]" (sorted keys),
// structs "{a b}" (objects marked with goStruct), nil "<nil>", a missing map key
// "<no value>". A nil slice or map of a Go struct is goNil('slice'|'map'): it prints
// "[]" or "map[]" but is `null` to json. Anything else is a UsageError naming it.
import { UsageError } from './errors';

export class GoNil {
  constructor(readonly kind: 'slice' | 'map') {}
}
export const nilSlice = new GoNil('slice');
export const nilMap = new GoNil('map');

const structs = new WeakSet<object>();
// What json prints for a struct whose fields are omitempty (the JSON form it came from).
const jsonForms = new WeakMap<object, unknown>();
// Marks an object as a Go struct: %v prints its values in order, a missing field is an error;
// `json` prints `jsonForm` when given (Go's omitempty fields left out).
export function goStruct<T extends object>(obj: T, jsonForm?: unknown): T {
  structs.add(obj);
  if (jsonForm !== undefined) {
    jsonForms.set(obj, jsonForm);
    if (jsonForm && typeof jsonForm === 'object') ordered.add(jsonForm);
  }
  return obj;
}

// Objects whose key order is a struct's field order; every other object is a map,
// which encoding/json writes with sorted keys.
const ordered = new WeakSet<object>();

function jsonReplacer(_k: string, x: unknown): unknown {
  if (x instanceof GoNil || x === NO_VALUE) return null;
  if (!x || typeof x !== 'object' || Array.isArray(x)) return x;
  if (jsonForms.has(x)) return jsonForms.get(x);
  if (structs.has(x) || ordered.has(x)) return x;
  const sorted = Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]));
  ordered.add(sorted);
  return sorted;
}

const NO_VALUE = Symbol('no value');

function fail(template: string, why: string, hint?: string): UsageError {
  return new UsageError(`template parsing error: template: ${why}`, {
    hint: hint ?? `check the --format template ${JSON.stringify(template)}; docker's Go template syntax is {{.Field}}, {{json .Field}}, {{range .List}}…{{end}}`,
  });
}

// ---- lexing: text and actions ----------------------------------------------

type Token =
  | { t: 'field'; path: string[] } // .A.B ; [] is "."
  | { t: 'var'; name: string; path: string[] } // $x.A ; name "" is "$"
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
  | { t: 'ident'; v: string }
  | { t: 'pipe' }
  | { t: 'lparen' }
  | { t: 'rparen'; path: string[] } // ")" optionally followed by .Field
  | { t: 'assign' } // :=  or =
  | { t: 'comma' };

function lexAction(src: string, template: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fieldPath = (): string[] => {
    const path: string[] = [];
    while (src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      i++;
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      path.push(m[0]);
      i += m[0].length;
    }
    return path;
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      out.push({ t: 'pipe' });
      i++;
    } else if (c === '(') {
      out.push({ t: 'lparen' });
      i++;
    } else if (c === ')') {
      i++;
      out.push({ t: 'rparen', path: fieldPath() });
    } else if (c === ',') {
      out.push({ t: 'comma' });
      i++;
    } else if (src.startsWith(':=', i)) {
      out.push({ t: 'assign' });
      i += 2;
    } else if (c === '=') {
      out.push({ t: 'assign' });
      i++;
    } else if (c === '.') {
      if (/[A-Za-z_]/.test(src[i + 1] ?? '')) out.push({ t: 'field', path: fieldPath() });
      else {
        out.push({ t: 'field', path: [] });
        i++;
      }
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i))!;
      i += m[0].length;
      out.push({ t: 'var', name: m[0].slice(1), path: fieldPath() });
    } else if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(src.slice(i));
      if (!m) throw fail(template, 'unterminated quoted string');
      out.push({ t: 'str', v: JSON.parse(m[0].replace(/\\'/g, "'")) as string });
      i += m[0].length;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw fail(template, 'unterminated raw quoted string');
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (c === "'") {
      const m = /^'(\\.|[^'\\])'/.exec(src.slice(i));
      if (!m) throw fail(template, 'malformed character constant');
      out.push({ t: 'num', v: (JSON.parse(`"${m[1]}"`) as string).codePointAt(0)! });
      i += m[0].length;
    } else if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][-+]?\d+)?)/.exec(src.slice(i));
      if (!m) throw fail(template, `bad number syntax: ${JSON.stringify(src.slice(i, i + 10))}`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      i += m[0].length;
      if (m[0] === 'true' || m[0] === 'false') out.push({ t: 'bool', v: m[0] === 'true' });
      else if (m[0] === 'nil') out.push({ t: 'nil' });
      else out.push({ t: 'ident', v: m[0] });
    } else {
      throw fail(template, `unexpected ${JSON.stringify(c)} in command`);
    }
  }
  return out;
}

// ---- parsing ---------------------------------------------------------------

type Arg =
  | { k: 'field'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'pipe'; pipe: Pipeline; path: string[] }
  | { k: 'func'; name: string }; // a function name as an operand (called with no args)

interface Command {
  fn?: string; // a function call; else a single operand
  args: Arg[];
}

interface Pipeline {
  decl: string[]; // variables declared with :=
  cmds: Command[];
}

type Node =
  | { n: 'text'; v: string }
  | { n: 'out'; pipe: Pipeline }
  | { n: 'if' | 'with'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'range'; pipe: Pipeline; then: Node[]; else: Node[] };

const FUNCS = new Set(['json', 'join', 'split', 'upper', 'lower', 'title', 'pad', 'truncate', 'index', 'len', 'print', 'printf', 'println', 'not', 'and', 'or', 'eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const UNSUPPORTED_KEYWORDS = new Set(['template', 'define', 'block', 'break', 'continue']);

function parsePipeline(tokens: Token[], template: string): Pipeline {
  let pos = 0;
  const decl: string[] = [];
  // `$a, $b :=` or `$a :=`
  const assignAt = tokens.findIndex((t) => t.t === 'assign');
  if (assignAt > 0) {
    for (let j = 0; j < assignAt; j++) {
      const t = tokens[j];
      if (t.t === 'var' && !t.path.length) decl.push(t.name);
      else if (t.t !== 'comma') throw fail(template, 'bad variable declaration');
    }
    pos = assignAt + 1;
  }
  const parseCmds = (stopAtParen: boolean): Command[] => {
    const cmds: Command[] = [];
    let cur: Command = { args: [] };
    const operand = (): Arg => {
      const t = tokens[pos++];
      switch (t.t) {
        case 'field':
          return { k: 'field', path: t.path };
        case 'var':
          return { k: 'var', name: t.name, path: t.path };
        case 'str':
        case 'num':
        case 'bool':
          return { k: 'lit', v: t.v };
        case 'nil':
          return { k: 'lit', v: null };
        case 'lparen': {
          const inner = parseCmds(true);
          const close = tokens[pos - 1] as Extract<Token, { t: 'rparen' }>;
          return { k: 'pipe', pipe: { decl: [], cmds: inner }, path: close.path };
        }
        case 'ident':
          if (!FUNCS.has(t.v)) throw unknownFunc(t.v, template);
          return { k: 'func', name: t.v };
        default:
          throw fail(template, `unexpected ${t.t} in operand`);
      }
    };
    while (pos < tokens.length) {
      const t = tokens[pos];
      if (t.t === 'rparen') {
        if (!stopAtParen) throw fail(template, 'unexpected right paren');
        pos++;
        cmds.push(cur);
        return cmds;
      }
      if (t.t === 'pipe') {
        if (!cur.fn && !cur.args.length) throw fail(template, 'missing command before |');
        cmds.push(cur);
        cur = { args: [] };
        pos++;
        continue;
      }
      if (!cur.fn && !cur.args.length && t.t === 'ident') {
        if (!FUNCS.has(t.v)) throw unknownFunc(t.v, template);
        cur.fn = t.v;
        pos++;
        continue;
      }
      cur.args.push(operand());
    }
    if (stopAtParen) throw fail(template, 'unclosed left paren');
    if (!cur.fn && !cur.args.length) throw fail(template, 'missing value for command');
    cmds.push(cur);
    return cmds;
  };
  const cmds = parseCmds(false);
  for (const c of cmds) if (!c.fn && c.args.length > 1) throw fail(template, `can't give argument to non-function ${describeArg(c.args[0])}`);
  return { decl, cmds };
}

function describeArg(a: Arg): string {
  if (a.k === 'field') return `.${a.path.join('.')}`;
  if (a.k === 'var') return `$${a.name}${a.path.map((p) => `.${p}`).join('')}`;
  return JSON.stringify(a.k === 'lit' ? a.v : a.k);
}

function unknownFunc(name: string, template: string): UsageError {
  if (UNSUPPORTED_KEYWORDS.has(name)) return fail(template, `{{${name}}} is not supported by img's templates`, 'use the supported subset: if/else/range/with, fields and functions');
  return fail(template, `function "${name}" not defined`, `img's templates know: ${[...FUNCS].join(', ')}`);
}

export class Template {
  private readonly root: Node[];

  constructor(readonly source: string) {
    this.root = this.parse();
  }

  private parse(): Node[] {
    const src = this.source;
    // Split into text and actions, applying {{- and -}} trims.
    const parts: ({ kind: 'text'; v: string } | { kind: 'act'; v: string })[] = [];
    let i = 0;
    while (i < src.length) {
      const open = src.indexOf('{{', i);
      if (open < 0) {
        parts.push({ kind: 'text', v: src.slice(i) });
        break;
      }
      parts.push({ kind: 'text', v: src.slice(i, open) });
      let body = open + 2;
      if (src.startsWith('- ', body) || src.startsWith('-\t', body) || src.startsWith('-\n', body)) {
        const prev = parts[parts.length - 1] as { v: string };
        prev.v = prev.v.replace(/\s+$/, '');
        body += 1;
      }
      const close = findClose(src, body);
      if (close < 0) throw fail(src, 'unclosed action');
      let end = close;
      let trimAfter = false;
      if (/\s-$/.test(src.slice(body, close))) {
        end = close - 1;
        trimAfter = true;
      }
      parts.push({ kind: 'act', v: src.slice(body, end).trim() });
      i = close + 2;
      if (trimAfter) i += /^\s*/.exec(src.slice(i))![0].length;
    }
    // Build the tree.
    type Frame = { node: Extract<Node, { then: Node[] }> | null; list: Node[]; inElse: boolean };
    const stack: Frame[] = [{ node: null, list: [], inElse: false }];
    const top = () => stack[stack.length - 1];
    const add = (n: Node) => top().list.push(n);
    for (const p of parts) {
      if (p.kind === 'text') {
        if (p.v) add({ n: 'text', v: p.v });
        continue;
      }
      const act = p.v;
      if (act.startsWith('/*')) {
        if (!act.endsWith('*/')) throw fail(src, 'unclosed comment');
        continue;
      }
      const kw = /^(if|range|with|else|end)\b/.exec(act)?.[1];
      const rest = kw ? act.slice(kw.length).trim() : act;
      if (kw === 'if' || kw === 'range' || kw === 'with') {
        const node = { n: kw, pipe: parsePipeline(lexAction(rest, src), src), then: [] as Node[], else: [] as Node[] } as Extract<Node, { then: Node[] }>;
        if (!rest) throw fail(src, `missing value for ${kw}`);
        add(node);
        stack.push({ node, list: node.then, inElse: false });
      } else if (kw === 'else') {
        const f = top();
        if (!f.node || f.inElse) throw fail(src, 'unexpected {{else}}');
        f.inElse = true;
        f.list = f.node.else;
        const chained = /^(if|with)\b/.exec(rest)?.[1];
        if (chained) {
          // {{else if x}} is {{else}}{{if x}}…{{end}} sharing the outer {{end}}.
          const inner = { n: chained, pipe: parsePipeline(lexAction(rest.slice(chained.length).trim(), src), src), then: [] as Node[], else: [] as Node[] } as Extract<Node, { then: Node[] }>;
          f.list.push(inner);
          stack.push({ node: inner, list: inner.then, inElse: false });
          (stack[stack.length - 1] as Frame & { chained?: boolean }).chained = true;
        } else if (rest) throw fail(src, `unexpected "${rest}" after else`);
      } else if (kw === 'end') {
        if (rest) throw fail(src, `unexpected "${rest}" in end`);
        if (stack.length === 1) throw fail(src, 'unexpected {{end}}');
        // Close chained else-ifs along with their outer block.
        while ((stack.pop() as Frame & { chained?: boolean }).chained);
      } else {
        const firstWord = /^[A-Za-z_]+/.exec(act)?.[0];
        if (firstWord && UNSUPPORTED_KEYWORDS.has(firstWord)) throw unknownFunc(firstWord, src);
        if (!act) throw fail(src, 'missing value for command');
        add({ n: 'out', pipe: parsePipeline(lexAction(act, src), src) });
      }
    }
    if (stack.length > 1) throw fail(src, `unexpected EOF: {{${top().node!.n}}} has no {{end}}`);
    return stack[0].list;
  }

  execute(data: unknown): string {
    const out: string[] = [];
    const vars: Map<string, unknown>[] = [new Map([['', data]])];
    this.run(this.root, data, vars, out);
    return out.join('');
  }

  private run(nodes: Node[], dot: unknown, vars: Map<string, unknown>[], out: string[]): void {
    for (const node of nodes) {
      switch (node.n) {
        case 'text':
          out.push(node.v);
          break;
        case 'out': {
          const v = this.pipeline(node.pipe, dot, vars);
          if (!node.pipe.decl.length) out.push(printValue(v));
          break;
        }
        case 'if':
        case 'with': {
          const scope = new Map<string, unknown>();
          const v = this.pipeline(node.pipe, dot, [...vars, scope]);
          if (truth(v)) this.run(node.then, node.n === 'with' ? v : dot, [...vars, scope], out);
          else this.run(node.else, dot, [...vars, scope], out);
          break;
        }
        case 'range': {
          const v = this.pipeline({ decl: [], cmds: node.pipe.cmds }, dot, vars);
          const items: [unknown, unknown][] =
            v instanceof GoNil || v == null
              ? []
              : Array.isArray(v)
                ? v.map((x, i) => [i, x])
                : typeof v === 'object'
                  ? Object.keys(v as object)
                      .sort()
                      .map((k) => [k, (v as Record<string, unknown>)[k]])
                  : typeof v === 'number'
                    ? Array.from({ length: v }, (_x, i) => [i, i])
                    : (() => {
                        throw new UsageError(`template: range can't iterate over ${printValue(v)}`, { hint: 'range over a list or a map' });
                      })();
          if (!items.length) {
            this.run(node.else, dot, vars, out);
            break;
          }
          for (const [k, x] of items) {
            const scope = new Map<string, unknown>();
            const d = node.pipe.decl;
            if (d.length === 1) scope.set(d[0], x);
            if (d.length === 2) {
              scope.set(d[0], k);
              scope.set(d[1], x);
            }
            this.run(node.then, x, [...vars, scope], out);
          }
          break;
        }
      }
    }
  }

  private lookupVar(name: string, vars: Map<string, unknown>[]): unknown {
    for (let i = vars.length - 1; i >= 0; i--) if (vars[i].has(name)) return vars[i].get(name);
    throw fail(this.source, `undefined variable: $${name}`);
  }

  private pipeline(p: Pipeline, dot: unknown, vars: Map<string, unknown>[]): unknown {
    let prev: unknown = NO_VALUE;
    for (const c of p.cmds) prev = this.command(c, dot, vars, prev);
    if (p.decl.length) vars[vars.length - 1].set(p.decl[p.decl.length - 1], prev);
    return prev;
  }

  private command(c: Command, dot: unknown, vars: Map<string, unknown>[], prev: unknown): unknown {
    const args = c.args.map((a) => this.arg(a, dot, vars));
    if (prev !== NO_VALUE) args.push(prev);
    if (!c.fn) {
      if (c.args[0]?.k === 'func') return callFunc(c.args[0].name, args.slice(1), this.source);
      if (prev !== NO_VALUE && c.args.length) throw fail(this.source, `can't give argument to non-function ${describeArg(c.args[0])}`);
      return args[0];
    }
    return callFunc(c.fn, args, this.source);
  }

  private arg(a: Arg, dot: unknown, vars: Map<string, unknown>[]): unknown {
    switch (a.k) {
      case 'lit':
        return a.v;
      case 'field':
        return this.fields(dot, a.path);
      case 'var':
        return this.fields(this.lookupVar(a.name, vars), a.path);
      case 'pipe':
        return this.fields(this.pipeline(a.pipe, dot, vars), a.path);
      case 'func':
        return callFunc(a.name, [], this.source);
    }
  }

  private fields(v: unknown, path: string[]): unknown {
    for (const name of path) {
      if (v === NO_VALUE || v === undefined) return NO_VALUE;
      if (v instanceof GoNil) {
        if (v.kind === 'map') return NO_VALUE;
        throw new UsageError(`template: can't evaluate field ${name} in type slice`, { hint: 'use index or range for lists' });
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new UsageError(`template: can't evaluate field ${name} in type ${goType(v)}`, { hint: `check the field names in ${JSON.stringify(this.source)}` });
      }
      const obj = v as Record<string, unknown>;
      if (!(name in obj)) {
        if (structs.has(obj)) {
          throw new UsageError(`template: can't evaluate field ${name} in type ${goType(v)}`, { hint: `the fields here are ${Object.keys(obj).join(', ')}` });
        }
        return NO_VALUE;
      }
      v = obj[name];
    }
    return v;
  }
}

// Finds the "}}" closing an action, skipping quoted strings and comments.
function findClose(src: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (src.startsWith('/*', i)) {
      const e = src.indexOf('*/', i + 2);
      if (e < 0) return -1;
      i = e + 2;
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '`') {
      const e = src.indexOf('`', i + 1);
      if (e < 0) return -1;
      i = e + 1;
    } else if (src.startsWith('}}', i)) return i;
    else i++;
  }
  return -1;
}

function goType(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'slice';
  if (typeof v === 'object') return structs.has(v) ? 'struct' : 'map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  return typeof v;
}

function truth(v: unknown): boolean {
  if (v === NO_VALUE || v === undefined || v === null || v instanceof GoNil) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return structs.has(v) || Object.keys(v).length > 0;
  return Boolean(v);
}

// fmt's %v.
export function printValue(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (v instanceof GoNil) return v.kind === 'slice' ? '[]' : 'map[]';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  if (typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    if (structs.has(obj)) return `{${Object.values(obj).map(printValue).join(' ')}}`;
    return `map[${Object.keys(obj)
      .sort()
      .map((k) => `${k}:${printValue(obj[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

// docker's json function: encoding/json without HTML escaping, nil slices as null.
export function goJson(v: unknown): string {
  return JSON.stringify(v, jsonReplacer) ?? 'null';
}

function str(v: unknown, fn: string, template: string): string {
  if (typeof v === 'string') return v;
  throw fail(template, `error calling ${fn}: expected a string, got ${printValue(v)}`);
}

// fmt.Sprint: spaces between operands when neither is a string.
function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += printValue(a);
  });
  return out;
}

function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  const out = format.replace(/%([-+# 0]*\d*(?:\.\d+)?)([svdqtxXf%])/g, (_m, flags: string, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 'q':
        s = JSON.stringify(printValue(a));
        break;
      case 'd':
        s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${goType(a)}=${printValue(a)})`;
        break;
      case 'x':
      case 'X':
        s = typeof a === 'number' ? a.toString(16) : [...new TextEncoder().encode(printValue(a))].map((b) => b.toString(16).padStart(2, '0')).join('');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'f':
        s = typeof a === 'number' ? a.toFixed(/\.(\d+)/.exec(flags)?.[1] ? Number(/\.(\d+)/.exec(flags)![1]) : 6) : printValue(a);
        break;
      default:
        s = printValue(a);
    }
    const width = Number(/\d+/.exec(flags.replace(/\.\d+/, ''))?.[0] ?? 0);
    if (s.length < width) s = flags.includes('-') ? s.padEnd(width) : s.padStart(width);
    return s;
  });
  return n < args.length ? `${out}%!(EXTRA ${args.slice(n).map(printValue).join(', ')})` : out;
}

function lenOf(v: unknown, template: string): number {
  if (v instanceof GoNil || v === null) return 0;
  if (typeof v === 'string' || Array.isArray(v)) return v.length;
  if (typeof v === 'object' && v && !structs.has(v)) return Object.keys(v).length;
  throw fail(template, `error calling len: len of type ${goType(v)}`);
}

function compare(a: unknown, b: unknown, fn: string, template: string): number {
  const norm = (x: unknown) => (x instanceof GoNil ? null : x);
  a = norm(a);
  b = norm(b);
  if (typeof a !== typeof b) throw fail(template, `error calling ${fn}: incompatible types for comparison`);
  if (typeof a === 'number' || typeof a === 'string') return a < (b as typeof a) ? -1 : a > (b as typeof a) ? 1 : 0;
  if (fn === 'eq' || fn === 'ne') return a === b ? 0 : 1;
  throw fail(template, `error calling ${fn}: invalid type for comparison`);
}

function callFunc(name: string, args: unknown[], template: string): unknown {
  const arity = (n: number) => {
    if (args.length !== n) throw fail(template, `wrong number of args for ${name}: want ${n} got ${args.length}`);
  };
  switch (name) {
    case 'json':
      arity(1);
      return goJson(args[0]);
    case 'join': {
      arity(2);
      const list = args[0] instanceof GoNil || args[0] === null ? [] : args[0];
      if (!Array.isArray(list)) throw fail(template, `error calling join: expected a list, got ${printValue(list)}`);
      return list.map(printValue).join(str(args[1], name, template));
    }
    case 'split':
      arity(2);
      return str(args[0], name, template).split(str(args[1], name, template));
    case 'upper':
      arity(1);
      return str(args[0], name, template).toUpperCase();
    case 'lower':
      arity(1);
      return str(args[0], name, template).toLowerCase();
    case 'title':
      arity(1);
      return str(args[0], name, template).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, sep: string, c: string) => sep + c.toUpperCase());
    case 'pad':
      arity(3);
      return `${' '.repeat(Number(args[1]))}${printValue(args[0])}${' '.repeat(Number(args[2]))}`;
    case 'truncate': {
      arity(2);
      const s = printValue(args[0]);
      const n = Number(args[1]);
      return [...s].length > n ? [...s].slice(0, n).join('') : s;
    }
    case 'index': {
      if (!args.length) throw fail(template, 'wrong number of args for index: want at least 1 got 0');
      let v = args[0];
      for (const k of args.slice(1)) {
        if (v instanceof GoNil || v === null) {
          if (v instanceof GoNil && v.kind === 'map') return '';
          throw fail(template, `error calling index: index of untyped nil`);
        }
        if (Array.isArray(v)) {
          if (typeof k !== 'number' || !Number.isInteger(k)) throw fail(template, `error calling index: cannot index slice with ${printValue(k)}`);
          if (k < 0 || k >= v.length) throw fail(template, `error calling index: index out of range: ${k}`);
          v = v[k];
        } else if (typeof v === 'object') {
          const obj = v as Record<string, unknown>;
          // A missing key gives the zero value; docker's maps here hold strings (labels, options).
          v = Object.prototype.hasOwnProperty.call(obj, String(k)) ? obj[String(k)] : '';
        } else if (typeof v === 'string' && typeof k === 'number') {
          v = v.charCodeAt(k);
        } else throw fail(template, `error calling index: can't index item of type ${goType(v)}`);
      }
      return v;
    }
    case 'len':
      arity(1);
      return lenOf(args[0], template);
    case 'print':
      return sprint(args);
    case 'println':
      return `${args.map(printValue).join(' ')}\n`;
    case 'printf':
      if (!args.length) throw fail(template, 'wrong number of args for printf: want at least 1 got 0');
      return sprintf(str(args[0], name, template), args.slice(1));
    case 'not':
      arity(1);
      return !truth(args[0]);
    case 'and': {
      if (!args.length) throw fail(template, 'wrong number of args for and');
      for (const a of args) if (!truth(a)) return a;
      return args[args.length - 1];
    }
    case 'or': {
      if (!args.length) throw fail(template, 'wrong number of args for or');
      for (const a of args) if (truth(a)) return a;
      return args[args.length - 1];
    }
    case 'eq':
      if (args.length < 2) throw fail(template, 'missing argument for comparison');
      return args.slice(1).some((b) => compare(args[0], b, name, template) === 0);
    case 'ne':
      arity(2);
      return compare(args[0], args[1], name, template) !== 0;
    case 'lt':
      arity(2);
      return compare(args[0], args[1], name, template) < 0;
    case 'le':
      arity(2);
      return compare(args[0], args[1], name, template) <= 0;
    case 'gt':
      arity(2);
      return compare(args[0], args[1], name, template) > 0;
    case 'ge':
      arity(2);
      return compare(args[0], args[1], name, template) >= 0;
    default:
      throw unknownFunc(name, template);
  }
}

// A --format that starts with "table" (docker's table directive): the rest is
// the row template, shown under a header row made from `header`, aligned as
// docker's formatter aligns (text/tabwriter minwidth 10, padding 3, spaces).
export interface FormatPlan {
  table: boolean;
  template: Template;
}

export function parseFormat(format: string): FormatPlan {
  const m = /^table\s*/.exec(format);
  if (!m) return { table: false, template: new Template(format) };
  return { table: true, template: new Template(format.slice(m[0].length).replace(/\\t/g, '\t')) };
}
