// RUN for another architecture: the kernel hands the step's foreign ELF binaries
// to an emulator registered in binfmt_misc (QEMU user emulation, Debian's
// qemu-user-static + binfmt-support). The handler must carry the F (fix-binary)
// flag: the kernel then opens the interpreter when it is registered, so it runs
// inside the step's container, whose filesystem does not have it; without F the
// step fails with a bare "no such file or directory".
//
// A handler is found the way the kernel finds it: by matching its magic and
// mask against the head of an ELF executable of the architecture, whatever the
// handler is called (qemu-aarch64, qemu-aarch64-static, …).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostError } from '../util/errors';

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

// ELF identity of an OCI architecture: class (1: 32-bit, 2: 64-bit), byte order
// (1: little, 2: big endian), e_machine, and Debian's qemu handler name.
const ELF: Record<string, { cls: 1 | 2; data: 1 | 2; machine: number; qemu: string }> = {
  amd64: { cls: 2, data: 1, machine: 62, qemu: 'x86_64' },
  '386': { cls: 1, data: 1, machine: 3, qemu: 'i386' },
  arm64: { cls: 2, data: 1, machine: 183, qemu: 'aarch64' },
  arm: { cls: 1, data: 1, machine: 40, qemu: 'arm' },
  ppc64le: { cls: 2, data: 1, machine: 21, qemu: 'ppc64le' },
  ppc64: { cls: 2, data: 2, machine: 21, qemu: 'ppc64' },
  s390x: { cls: 2, data: 2, machine: 22, qemu: 's390x' },
  riscv64: { cls: 2, data: 1, machine: 243, qemu: 'riscv64' },
  mips64le: { cls: 2, data: 1, machine: 8, qemu: 'mips64el' },
  mips64: { cls: 2, data: 2, machine: 8, qemu: 'mips64' },
  mipsle: { cls: 1, data: 1, machine: 8, qemu: 'mipsel' },
  mips: { cls: 1, data: 2, machine: 8, qemu: 'mips' },
  loong64: { cls: 2, data: 1, machine: 258, qemu: 'loongarch64' },
};

export interface BinfmtHandler {
  name: string; // the entry's file name in binfmt_misc
  enabled: boolean;
  interpreter: string;
  flags: string; // "PF", "OCF", …
  offset: number;
  magic: Buffer;
  mask: Buffer | null;
}

// The head of an executable (ET_EXEC) for `architecture`, or null when img does not know its ELF identity.
export function elfHeader(architecture: string): Buffer | null {
  const id = ELF[architecture];
  if (!id) return null;
  const h = Buffer.alloc(20);
  h.set([0x7f, 0x45, 0x4c, 0x46, id.cls, id.data, 1], 0);
  const u16 = (off: number, v: number): void => {
    if (id.data === 1) h.writeUInt16LE(v, off);
    else h.writeUInt16BE(v, off);
  };
  u16(16, 2); // e_type: ET_EXEC
  u16(18, id.machine);
  return h;
}

// What the kernel reads from a handler's entry: "enabled", "interpreter …", "flags: …", "offset …", "magic …", "mask …".
export function parseHandler(name: string, text: string): BinfmtHandler | null {
  const h: BinfmtHandler = { name, enabled: false, interpreter: '', flags: '', offset: 0, magic: Buffer.alloc(0), mask: null };
  for (const line of text.split('\n')) {
    if (line === 'enabled') h.enabled = true;
    else if (line.startsWith('interpreter ')) h.interpreter = line.slice(12);
    else if (line.startsWith('flags:')) h.flags = line.slice(6).trim();
    else if (line.startsWith('offset ')) h.offset = Number(line.slice(7));
    else if (line.startsWith('magic ')) h.magic = Buffer.from(line.slice(6), 'hex');
    else if (line.startsWith('mask ')) h.mask = Buffer.from(line.slice(5), 'hex');
  }
  return h.magic.length ? h : null; // extension handlers ("E") have no magic
}

export function handlerMatches(h: BinfmtHandler, head: Buffer): boolean {
  if (h.offset + h.magic.length > head.length) return false;
  for (let i = 0; i < h.magic.length; i++) {
    const byte = head[h.offset + i] & (h.mask ? h.mask[i] : 0xff);
    if (byte !== h.magic[i]) return false;
  }
  return true;
}

// The registered magic handlers, or null when binfmt_misc is not mounted or readable here.
export function readHandlers(dir = BINFMT_DIR): BinfmtHandler[] | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return null;
  }
  if (!names.includes('status')) return null;
  const out: BinfmtHandler[] = [];
  for (const n of names) {
    if (n === 'status' || n === 'register') continue;
    try {
      const h = parseHandler(n, fs.readFileSync(path.join(dir, n), 'utf8'));
      if (h) out.push(h);
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}

export type EmulationCheck =
  | { ok: true; handler: BinfmtHandler }
  | { ok: false; reason: 'unknown-arch' | 'unreadable' | 'missing' | 'disabled' | 'no-fix-binary'; handler?: BinfmtHandler };

// Whether a binary of `architecture` runs here through an emulator.
export function checkEmulation(architecture: string, dir = BINFMT_DIR): EmulationCheck {
  const head = elfHeader(architecture);
  if (!head) return { ok: false, reason: 'unknown-arch' };
  const handlers = readHandlers(dir);
  if (!handlers) return { ok: false, reason: 'unreadable' };
  let globalOn = true;
  try {
    globalOn = fs.readFileSync(path.join(dir, 'status'), 'utf8').trim() === 'enabled';
  } catch {
    /* keep the default */
  }
  const matching = handlers.filter((h) => handlerMatches(h, head));
  const usable = matching.find((h) => h.enabled && globalOn);
  if (!usable) return { ok: false, reason: matching.length ? 'disabled' : 'missing', handler: matching[0] };
  if (!usable.flags.includes('F')) return { ok: false, reason: 'no-fix-binary', handler: usable };
  return { ok: true, handler: usable };
}

// What to install and register, as root, so `architecture` runs emulated (for errors and img doctor).
export function emulationFix(architecture: string): string {
  return `as root: ${installSteps(architecture)}`;
}

function installSteps(architecture: string): string {
  const q = ELF[architecture]?.qemu;
  const name = q ? `qemu-${q}` : `the QEMU handler for ${architecture}`;
  return (
    `apt-get install qemu-user-static binfmt-support (Debian/Ubuntu), then update-binfmts --enable ${name} ` +
    `(it registers with the F flag; if binfmt_misc is not mounted: mount -t binfmt_misc binfmt_misc ${BINFMT_DIR}), ` +
    `or docker run --privileged --rm tonistiigi/binfmt --install ${architecture}`
  );
}

// Throws a HostError saying what is missing and how to add it when a binary of
// `architecture` cannot run here; `step` names what needed it ("RUN for
// linux/arm64 on this linux/amd64 host"). When binfmt_misc cannot be read (a
// container without it mounted) the step is tried: the host's handlers may apply.
export function requireEmulation(architecture: string, step: string, dir = BINFMT_DIR): void {
  const c = checkEmulation(architecture, dir);
  if (c.ok || c.reason === 'unreadable') return;
  const h = c.handler;
  let why: string;
  let hint: string;
  switch (c.reason) {
    case 'unknown-arch':
      why = `img does not know how to emulate ${architecture}`;
      hint = 'build this platform on a machine of that architecture, or cross-compile in a FROM --platform=$BUILDPLATFORM stage';
      break;
    case 'missing':
      why = `no binfmt_misc handler for ${architecture} binaries is registered`;
      hint = emulationFix(architecture);
      break;
    case 'disabled':
      why = `the binfmt_misc handler ${h!.name} for ${architecture} binaries is disabled`;
      hint = `as root: echo 1 > ${BINFMT_DIR}/${h!.name} (or update-binfmts --enable ${h!.name})`;
      break;
    case 'no-fix-binary':
      why = `the binfmt_misc handler ${h!.name} is registered without the F (fix-binary) flag, so its interpreter ${h!.interpreter} is not found inside the build container`;
      hint = `as root: echo -1 > ${BINFMT_DIR}/${h!.name} to remove it, then ${installSteps(architecture)}`;
      break;
  }
  throw new HostError(`${step} needs emulation: ${why}`, { hint });
}
