// RUN --mount=... in two phases, as BuildKit does: the flag's CSV is split into
// fields once, when the instruction becomes a command (`parseMountFlag`); the
// values are expanded against the stage's environment and checked with
// BuildKit's keys, defaults and rules when the RUN is converted (`resolveMount`).

import { suggest } from '../errors';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
const MOUNT_TYPES: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
// for "did you mean" on an unknown key
const MOUNT_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'size', 'env'];

export interface MountSpec {
  type: MountType;
  from?: string;
  source?: string;
  target?: string;
  readonly: boolean;
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  required: boolean;
  env?: string;
  size?: number;
}

// encoding/csv-style split: commas separate, "..." quotes ("" is a quote).
export function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  let quoted = false;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          cur += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else cur += c;
    } else if (c === '"' && cur === '') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
    i++;
  }
  if (quoted) throw new Error(`extraneous or missing " in quoted-field: ${s}`);
  out.push(cur);
  return out;
}

// strconv.ParseBool
function parseBool(key: string, v: string): boolean {
  const t = ['1', 't', 'T', 'TRUE', 'true', 'True'];
  const f = ['0', 'f', 'F', 'FALSE', 'false', 'False'];
  if (t.includes(v)) return true;
  if (f.includes(v)) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

function parseUint(key: string, v: string, base: 8 | 10): number {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(v) || parseInt(v, base) > 0xffffffff) throw new Error(`invalid value ${v} for ${key}`);
  return parseInt(v, base);
}

// docker/go-units RAMInBytes: "64m", "1g", "512k", "100" (bytes), binary multiples.
export function parseRamBytes(v: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) throw new Error(`invalid size: '${v}'`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor(parseFloat(m[1]) * mult[m[2].toLowerCase()]);
}

// One field of a --mount value: `key=value` or a bare key (`ro`, `required`).
export interface MountField {
  text: string; // as written, for messages
  key: string; // trimmed, lower-cased
  value?: string; // unexpanded; undefined for a bare key
}

// A --mount flag split into its fields.
export interface MountFlag {
  raw: string; // the flag value as written
  fields: MountField[];
}

// Splits one --mount value into fields (throws on unbalanced CSV quotes).
export function parseMountFlag(raw: string): MountFlag {
  const fields: MountField[] = [];
  for (const text of splitCsv(raw)) {
    if (text.trim() === '') continue;
    const eq = text.indexOf('=');
    const key = (eq < 0 ? text : text.slice(0, eq)).trim().toLowerCase();
    fields.push(eq < 0 ? { text, key } : { text, key, value: text.slice(eq + 1) });
  }
  return { raw, fields };
}

// The value of `key` as written (the last one wins), e.g. from= before expansion.
export function mountField(flag: MountFlag, key: string): string | undefined {
  let v: string | undefined;
  for (const f of flag.fields) if (f.key === key && f.value !== undefined) v = f.value;
  return v;
}

// The mount a flag describes, its values expanded by `expand`.
export function resolveMount(flag: MountFlag, expand: (w: string) => string): MountSpec {
  let type: MountType = 'bind';
  // The type decides which keys are allowed, so find it first.
  for (const f of flag.fields) {
    if (f.key === 'type' && f.value !== undefined) {
      const t = expand(f.value).toLowerCase();
      if (!MOUNT_TYPES.includes(t as MountType)) {
        const s = suggest(t, MOUNT_TYPES, true);
        throw new Error(`unsupported mount type "${f.value}" ${s ? `(did you mean ${s}?)` : `(use one of ${MOUNT_TYPES.join(', ')})`}`);
      }
      type = t as MountType;
    }
  }
  const m: MountSpec = { type, readonly: false, required: false };
  let roAuto = true;
  for (const { text: field, key, value } of flag.fields) {
    if (value === undefined) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readonly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readonly = false;
          roAuto = false;
          continue;
        case 'required':
          if (type !== 'secret' && type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
          m.required = true;
          continue;
        default:
          throw new Error(`invalid field '${field}' must be a key=value pair`);
      }
    }
    const v = expand(value);
    switch (key) {
      case 'type':
        break;
      case 'from':
        m.from = v;
        break;
      case 'source':
      case 'src':
        m.source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = v;
        break;
      case 'readonly':
      case 'ro':
        m.readonly = parseBool(key, v);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readonly = !parseBool(key, v);
        roAuto = false;
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        m.required = parseBool(key, v);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        try {
          m.size = parseRamBytes(v);
        } catch {
          throw new Error(`invalid value for ${key}: ${v}`);
        }
        break;
      case 'id':
        m.id = v;
        break;
      case 'sharing': {
        const s = v.toLowerCase();
        if (s !== 'shared' && s !== 'private' && s !== 'locked') {
          throw new Error(`unsupported sharing value "${v}" (use shared, private or locked)`);
        }
        m.sharing = s;
        break;
      }
      case 'mode':
        m.mode = parseUint(key, v, 8);
        break;
      case 'uid':
        m.uid = parseUint(key, v, 10);
        break;
      case 'gid':
        m.gid = parseUint(key, v, 10);
        break;
      case 'env':
        if (type !== 'secret') throw new Error(`unexpected key '${key}' for mount type '${type}'`);
        m.env = v;
        break;
      default: {
        const s = suggest(key, MOUNT_KEYS, true);
        throw new Error(`unexpected key '${key}' in '${field}'${s ? ` (did you mean ${s}?)` : ''}`);
      }
    }
  }
  const fileInfoAllowed = type === 'secret' || type === 'ssh' || type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new Error(`mode not allowed for "${type}" type mounts`);
    if (m.uid !== undefined) throw new Error(`uid not allowed for "${type}" type mounts`);
    if (m.gid !== undefined) throw new Error(`gid not allowed for "${type}" type mounts`);
  }
  // bind/secret/ssh are read-only unless asked; cache and tmpfs writable.
  if (roAuto) m.readonly = !(type === 'cache' || type === 'tmpfs');
  if (type === 'secret') {
    if (m.from !== undefined) throw new Error('secret mount should not have a from');
    if (m.sharing) throw new Error('secret mount should not define sharing');
    if (!m.source && !m.target && !m.id) throw new Error('invalid secret mount. one of source, target required');
    if (m.source && m.id) throw new Error("both source and id can't be set");
  }
  if (m.sharing && type !== 'cache') throw new Error(`invalid cache sharing set for ${type} mount`);
  if (type === 'ssh' && m.from !== undefined) throw new Error('ssh mount should not have a from');
  if (type === 'ssh' && m.source) throw new Error('ssh does not support source');
  if (type === 'tmpfs' && m.from !== undefined) throw new Error('tmpfs mount should not have a from');
  return m;
}
