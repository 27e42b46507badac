// Untrusted text on its way to a terminal: control characters become escapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeControls, terminalLine } from '../../lib/util/escape';

// Anything a terminal would obey rather than print.
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

test('escapeControls writes C0, DEL, C1 and bidi controls as escapes; tab and newline stay unless oneLine', () => {
  assert.equal(escapeControls('plain text: ünïcödé, 日本, tab\there'), 'plain text: ünïcödé, 日本, tab\there');
  assert.equal(escapeControls('a\x00b\x1b[2Jc\x07d\x7fe'), 'a\\x00b\\x1b[2Jc\\x07d\\x7fe');
  assert.equal(escapeControls('csi\u009b2J osc\u009d0;t'), 'csi\\u009b2J osc\\u009d0;t');
  assert.equal(escapeControls('evil\u202Etxt.exe'), 'evil\\u202etxt.exe');
  assert.equal(escapeControls('two\nlines\r'), 'two\nlines\\r');
  assert.equal(escapeControls('two\nlines\tx', { oneLine: true }), 'two\\nlines\\tx');
  // Every code point below U+00A0 that is not printable comes out escaped, and
  // escaping twice changes nothing more.
  let all = '';
  for (let c = 0; c < 0xa0; c++) all += String.fromCharCode(c);
  const once = escapeControls(all, { oneLine: true });
  assert.doesNotMatch(once, RAW);
  assert.doesNotMatch(once, /[\t\n]/);
  assert.equal(escapeControls(once, { oneLine: true }), once);
});

test('terminalLine shows output as a terminal would leave the line', () => {
  assert.equal(terminalLine('\x1b[1;31merror:\x1b[0m no such file'), 'error: no such file', 'colours dropped');
  assert.equal(terminalLine('\x1b]0;owned\x07title kept out'), 'title kept out', 'OSC dropped');
  assert.equal(terminalLine(' 10%\r 55%\r100% done\r'), '100% done', 'what a carriage return overwrote is gone');
  assert.equal(terminalLine('up\x1b[5A\x1b[2Kclear \x00nul \u009b3J'), 'upclear \\x00nul ', 'cursor moves gone, other controls escaped');
  assert.doesNotMatch(terminalLine('\x1b[?1049h\x1bc\x1b7\x1b8\u009b1;1H\x0e\x0f'), RAW);
});
