// binfmt_misc handlers as the kernel lists them (a directory of entries in the
// kernel's text format, written here as files): which architectures run
// emulated, and the error that says what to install or fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkEmulation, elfHeader, handlerMatches, parseHandler, readHandlers, requireEmulation } from '../../lib/exec/binfmt';
import { HostError } from '../../lib/util/errors';

// Debian's qemu-user-static entries (magic and mask as /proc shows them).
const AARCH64 = (state: string, flags: string) =>
  `${state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: ${flags}\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n`;
const ARM = `enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n`;

function binfmtDir(entries: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'img-binfmt-'));
  fs.writeFileSync(path.join(dir, 'status'), 'enabled\n');
  fs.writeFileSync(path.join(dir, 'register'), '');
  for (const [n, text] of Object.entries(entries)) fs.writeFileSync(path.join(dir, n), text);
  return dir;
}

test('a handler is found by its magic, whatever its name; 32- and 64-bit arm are told apart', (t) => {
  const dir = binfmtDir({ 'aarch64-static': AARCH64('enabled', 'OCF'), 'qemu-arm': ARM, 'python3.11': 'enabled\ninterpreter /usr/bin/python3.11\nflags: \nextension .pyc\n' });
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  assert.deepEqual(readHandlers(dir)!.map((h) => h.name).sort(), ['aarch64-static', 'qemu-arm'], 'extension handlers have no magic');
  const arm64 = checkEmulation('arm64', dir);
  assert.ok(arm64.ok && arm64.handler.name === 'aarch64-static');
  const arm = checkEmulation('arm', dir);
  assert.ok(arm.ok && arm.handler.name === 'qemu-arm');
  assert.deepEqual(checkEmulation('s390x', dir), { ok: false, reason: 'missing', handler: undefined });
  // The mask lets ET_DYN (PIE) binaries match too, as the kernel would.
  const pie = elfHeader('arm64')!;
  pie.writeUInt16LE(3, 16);
  assert.ok(handlerMatches(parseHandler('x', AARCH64('enabled', 'F'))!, pie));
  assert.equal(readHandlers(path.join(dir, 'absent')), null, 'binfmt_misc not mounted');
});

test('a missing, disabled or non-F handler is a HostError saying what to do', (t) => {
  const dirs = {
    missing: binfmtDir({ 'qemu-arm': ARM }),
    disabled: binfmtDir({ 'qemu-aarch64': AARCH64('disabled', 'PF') }),
    noF: binfmtDir({ 'qemu-aarch64': AARCH64('enabled', 'P') }),
  };
  t.after(() => Object.values(dirs).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const step = 'RUN for linux/arm64 on this linux/amd64 host';
  const failure = (dir: string): HostError => {
    try {
      requireEmulation('arm64', step, dir);
    } catch (err) {
      assert.ok(err instanceof HostError, String(err));
      return err;
    }
    assert.fail('expected a HostError');
  };
  const missing = failure(dirs.missing);
  assert.equal(missing.message, `${step} needs emulation: no binfmt_misc handler for arm64 binaries is registered`);
  assert.match(missing.hint!, /apt-get install qemu-user-static binfmt-support .*update-binfmts --enable qemu-aarch64 .*F flag/);
  const disabled = failure(dirs.disabled);
  assert.match(disabled.message, /the binfmt_misc handler qemu-aarch64 for arm64 binaries is disabled$/);
  assert.match(disabled.hint!, /echo 1 > \/proc\/sys\/fs\/binfmt_misc\/qemu-aarch64/);
  const noF = failure(dirs.noF);
  assert.match(noF.message, /registered without the F \(fix-binary\) flag, so its interpreter \/usr\/libexec\/qemu-binfmt\/aarch64-binfmt-P is not found inside the build container$/);
  assert.match(noF.hint!, /^as root: echo -1 > \/proc\/sys\/fs\/binfmt_misc\/qemu-aarch64 to remove it, then apt-get install/);
  // Unreadable binfmt_misc (a container without it): the step is tried.
  assert.doesNotThrow(() => requireEmulation('arm64', step, path.join(dirs.missing, 'absent')));
});
