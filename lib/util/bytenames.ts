// File names are bytes, not text. A layer may hold names that are not UTF-8 (0xff,
// 0xc3 0x28 …); Node decodes string paths from the kernel as UTF-8 and would turn
// those bytes into U+FFFD, collapsing two names into one. Code that walks or writes
// image trees (archive/ apply and diff, snapshot/ copies, export/ local) therefore
// carries names as *byte strings*: a JS string with one char per byte (latin1),
// which keeps '/', '.wh.' and '..' tests, Map keys and byte-order sorting working as
// on text. Convert at the edges only:
//   - to the kernel:     fsPath(b)            (a Buffer when any byte is ≥ 0x80)
//   - from the kernel:   readdirBytes(dir), readlinkBytes(p)   ({ encoding: 'latin1' })
//   - from a JS path:    toBytes(p)           (a state dir or output path the user gave)
//   - to a person:       showBytes(b)         (UTF-8 where valid, \xNN escapes otherwise)
import * as fs from 'node:fs';

/** Whether every char is below 0x80: then the byte string is its own UTF-8 spelling. */
function isAscii(b: string): boolean {
  for (let i = 0; i < b.length; i++) if (b.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** A byte string as a path Node's fs takes without re-encoding. */
export function fsPath(b: string): string | Buffer {
  return isAscii(b) ? b : Buffer.from(b, 'latin1');
}

/** A JS (UTF-16) path as a byte string: its UTF-8 bytes. */
export function toBytes(p: string): string {
  return isAscii(p) ? p : Buffer.from(p, 'utf8').toString('latin1');
}

/** The raw bytes of a byte string. */
export function bytesOf(b: string): Buffer {
  return Buffer.from(b, 'latin1');
}

/** A byte string for messages: UTF-8 where the bytes are valid UTF-8, \xNN for the others. */
export function showBytes(b: string): string {
  if (isAscii(b)) return b;
  const buf = Buffer.from(b, 'latin1');
  const text = buf.toString('utf8');
  if (!text.includes('\ufffd')) return text;
  // Invalid sequences: whole characters decoded, every other byte escaped.
  const dec = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  for (let i = 0; i < buf.length; ) {
    const c = buf[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n > 0 && i + n <= buf.length) {
      try {
        out += dec.decode(buf.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        /* not one whole character: escape its first byte */
      }
    }
    out += `\\x${c.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

/** Names in a directory as byte strings (unsorted). */
export function readdirBytes(dir: string): string[] {
  return fs.readdirSync(fsPath(dir), { encoding: 'latin1' });
}

/** Entries of a directory with their types, names as byte strings (unsorted). */
export function readdirTypedBytes(dir: string): fs.Dirent[] {
  return fs.readdirSync(fsPath(dir), { encoding: 'latin1', withFileTypes: true });
}

/** A symlink's target as a byte string. */
export function readlinkBytes(p: string): string {
  return fs.readlinkSync(fsPath(p), { encoding: 'latin1' });
}
