// A YAML reader for the subset Kubernetes manifests in this repository use:
// documents split by `---`; block mappings and sequences by indentation
// (a sequence may sit at its key's indentation); `- key: value` items;
// plain, "double" (JSON escapes) and 'single' quoted scalars; flow sequences
// of scalars ([a, "b"]) and the empty mapping {}; literal blocks (`|`, `|-`); comments. Plain true,
// false, null and numbers are typed. Anything else (anchors, tags, flow
// mappings, folded blocks) is an error naming the line, so a manifest cannot
// silently mean something else here than in kubectl.

export type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

interface Line {
  no: number; // 1-based
  indent: number;
  text: string; // without indentation and comment
}

class YamlError extends Error {}

function stripComment(s: string): string {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || s[i - 1] === ' ')) return s.slice(0, i).trimEnd();
  }
  return s.trimEnd();
}

function scalar(raw: string, no: number): Yaml {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === '{}') return {};
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlError(`line ${no}: unterminated "string"`);
    return JSON.parse(s) as string;
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlError(`line ${no}: unterminated 'string'`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YamlError(`line ${no}: a flow sequence must end on its line`);
    const inner = s.slice(1, -1).trim();
    if (!inner) return [];
    const items: string[] = [];
    let cur = '';
    let quote = '';
    for (const c of inner) {
      if (quote) {
        if (c === quote) quote = '';
        cur += c;
      } else if (c === '"' || c === "'") {
        quote = c;
        cur += c;
      } else if (c === ',') {
        items.push(cur);
        cur = '';
      } else cur += c;
    }
    items.push(cur);
    return items.map((x) => scalar(x, no));
  }
  if (/^[&*!{>]/.test(s)) throw new YamlError(`line ${no}: "${s}" is outside the supported YAML subset`);
  return s;
}

// `key: value` → [key, value] (the colon must be followed by a space or end the line).
function splitKey(text: string, no: number): [string, string] | null {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ':' && (i === text.length - 1 || text[i + 1] === ' ')) {
      const key = scalar(text.slice(0, i), no);
      return [String(key), text.slice(i + 1).trim()];
    }
  }
  return null;
}

class Parser {
  private i = 0;
  constructor(
    private readonly lines: Line[],
    private readonly raw: string[],
  ) {}

  parse(): Yaml {
    if (this.lines.length === 0) return null;
    const v = this.block(this.lines[0].indent);
    if (this.i < this.lines.length) throw new YamlError(`line ${this.lines[this.i].no}: unexpected indentation`);
    return v;
  }

  private block(indent: number): Yaml {
    const first = this.lines[this.i];
    if (first.text === '-' || first.text.startsWith('- ')) return this.sequence(indent);
    return this.mapping(indent);
  }

  // The value after `key:` (or `-`): inline, a literal block, or a nested block.
  private value(rest: string, indent: number, no: number, seqAtSameIndent: boolean): Yaml {
    if (rest === '|' || rest === '|-') return this.literal(indent, rest === '|', no);
    if (rest !== '') return scalar(rest, no);
    const next = this.lines[this.i];
    if (!next) return null;
    if (next.indent > indent) return this.block(next.indent);
    if (seqAtSameIndent && next.indent === indent && (next.text === '-' || next.text.startsWith('- '))) return this.sequence(indent);
    return null;
  }

  // A literal block from the raw text (blank lines and # kept), the lines
  // after `afterNo` indented deeper than `indent`.
  private literal(indent: number, keepNewline: boolean, afterNo: number): string {
    const body: string[] = [];
    let blockIndent = -1;
    let n = afterNo; // 0-based index of the line after the key
    for (; n < this.raw.length; n++) {
      const r = this.raw[n];
      if (/^---\s*$/.test(r)) break;
      if (!r.trim()) {
        body.push('');
        continue;
      }
      const ind = r.length - r.trimStart().length;
      if (ind <= indent) break;
      if (blockIndent < 0) blockIndent = ind;
      body.push(r.slice(Math.min(ind, blockIndent)).trimEnd());
    }
    while (body.length && body.at(-1) === '') body.pop();
    while (this.i < this.lines.length && this.lines[this.i].no <= n) this.i++;
    return body.join('\n') + (keepNewline && body.length ? '\n' : '');
  }

  private mapping(indent: number): { [k: string]: Yaml } {
    const out: { [k: string]: Yaml } = {};
    while (this.i < this.lines.length && this.lines[this.i].indent === indent) {
      const l = this.lines[this.i];
      if (l.text === '-' || l.text.startsWith('- ')) break;
      const kv = splitKey(l.text, l.no);
      if (!kv) throw new YamlError(`line ${l.no}: expected "key: value", got "${l.text}"`);
      if (kv[0] in out) throw new YamlError(`line ${l.no}: duplicate key "${kv[0]}"`);
      this.i++;
      out[kv[0]] = this.value(kv[1], indent, l.no, true);
    }
    return out;
  }

  private sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    while (this.i < this.lines.length && this.lines[this.i].indent === indent) {
      const l = this.lines[this.i];
      if (!(l.text === '-' || l.text.startsWith('- '))) break;
      const rest = l.text.slice(1).trimStart();
      if (rest && splitKey(rest, l.no) && !/^["'[]/.test(rest)) {
        // `- key: value`: a mapping whose first line follows the dash.
        this.lines[this.i] = { no: l.no, indent: indent + (l.text.length - rest.length), text: rest };
        out.push(this.mapping(this.lines[this.i].indent));
      } else {
        this.i++;
        out.push(this.value(rest, indent, l.no, false));
      }
    }
    return out;
  }
}

// Every document of a YAML stream.
export function parseYamlDocuments(text: string): Yaml[] {
  const raw = text.split('\n');
  const docs: Line[][] = [[]];
  raw.forEach((r, idx) => {
    if (/^---\s*$/.test(r)) {
      docs.push([]);
      return;
    }
    if (r.includes('\t') && /^\s*\t/.test(r)) throw new YamlError(`line ${idx + 1}: tabs cannot indent YAML`);
    const text = stripComment(r);
    if (!text.trim()) return;
    docs.at(-1)!.push({ no: idx + 1, indent: text.length - text.trimStart().length, text: text.trim() });
  });
  return docs.filter((d) => d.length).map((d) => new Parser(d, raw).parse());
}
