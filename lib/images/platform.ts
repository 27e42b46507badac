// Platforms ("linux/arm/v7") the way containerd and BuildKit spell, normalise and
// match them. The one platform module: the Dockerfile frontend (TARGETPLATFORM and
// friends, FROM --platform), the registry client, the store and the exporters all
// use it. Pure TypeScript (no node: imports) so the frontend may bundle it for a
// neutral platform; the host's platform comes from globalThis.process when there is one.
//
// Normalising is containerd's platforms.Normalize, which BuildKit applies to every
// --platform: lower case; macos → darwin; x86_64, x86-64 → amd64 (and its baseline
// variant v1 is dropped); aarch64 → arm64, whose v8 is implied and dropped (BuildKit's
// TARGETVARIANT is "" on arm64); i386 → 386; armhf → arm/v7, armel → arm/v6; arm
// without a variant is arm/v7, and 5, 6, 7, 8 become v5 … v8. Other names pass as written.
import { NotFoundError, UsageError } from '../util/errors';
import type { Descriptor, Platform } from './types';

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

// What containerd knows (Go's syslist), for a lone "linux" or "arm64" in a specifier.
const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le',
  'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

function normalizeArch(architecture: string, variant: string): [string, string] {
  let arch = architecture.toLowerCase();
  let v = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (v === 'v1') v = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (v === '8' || v === 'v8') v = '';
      break;
    case 'armhf':
      arch = 'arm';
      v = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      break;
  }
  return [arch, v];
}

// A normalised copy; two platforms are the same exactly when their normal forms are equal.
export function normalizePlatform(p: Platform): Platform {
  let os = (p.os || 'linux').toLowerCase();
  if (os === 'macos') os = 'darwin';
  const [architecture, variant] = normalizeArch(p.architecture || '', p.variant ?? '');
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

// The platform this process runs on (linux/amd64 where there is no process, e.g. in a browser).
export function hostPlatform(): Platform {
  if (typeof process === 'undefined' || !process.arch) return { ...DEFAULT_PLATFORM };
  let architecture: string = process.arch;
  let variant = '';
  switch (process.arch) {
    case 'x64':
      architecture = 'amd64';
      break;
    case 'ia32':
      architecture = '386';
      break;
    case 'mipsel':
      architecture = 'mipsle';
      break;
    case 'ppc64':
      // Node says ppc64 for both byte orders; Linux distributions ship ppc64le.
      architecture = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'ppc64le' : 'ppc64';
      break;
    case 'arm': {
      // Node records the arm version it was built for (6 or 7).
      const v = (process.config?.variables as Record<string, unknown> | undefined)?.arm_version;
      variant = typeof v === 'string' || typeof v === 'number' ? `v${v}` : '';
      break;
    }
  }
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return normalizePlatform({ os, architecture, variant });
}

// "linux/arm/v7", "linux/amd64", "arm64" or "linux" → a normalised Platform, as
// containerd's platforms.Parse reads a specifier and BuildKit then normalises it. A lone
// component is an OS when it is a known one (the host's architecture), else an
// architecture on the host's OS. Throws a UsageError naming the specifier.
export function parsePlatform(spec: string): Platform {
  const p = parseSpecifier(spec);
  if (typeof p === 'string') {
    throw new UsageError(`invalid platform "${spec}": ${p}`, { hint: 'use OS/ARCH[/VARIANT], for example linux/amd64, linux/arm64 or linux/arm/v7' });
  }
  return p;
}

// parsePlatform for callers that report a bad specifier their own way (the frontend names the line).
export function parsePlatformOrNull(spec: string): Platform | null {
  const p = parseSpecifier(spec);
  return typeof p === 'string' ? null : p;
}

// A Platform, or why the specifier is not one.
function parseSpecifier(spec: string): Platform | string {
  const s = spec.trim();
  if (s.includes('*')) return 'wildcards are not supported';
  const parts = s.split('/');
  if (parts.length > 3) return 'too many "/"-separated parts';
  const bad = parts.find((x) => !/^[A-Za-z0-9_.-]+$/.test(x));
  if (bad !== undefined) return bad === '' ? 'an empty part' : `"${bad}" has characters other than letters, digits, "_", "." and "-"`;
  if (parts.length === 1) {
    const one = parts[0].toLowerCase();
    const host = hostPlatform();
    if (KNOWN_OS.has(one === 'macos' ? 'darwin' : one)) return normalizePlatform({ os: one, architecture: host.architecture, variant: host.variant });
    const [architecture, variant] = normalizeArch(one, '');
    if (!KNOWN_ARCH.has(architecture)) return 'unknown operating system or architecture';
    return normalizePlatform({ os: host.os, architecture, variant });
  }
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

// containerd's Format of the normal form: "linux/arm/v7", "linux/arm64", "linux/amd64".
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

// Equal after normalisation (os.version is ignored: it only matters on Windows).
export function matchPlatform(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

// Platforms a `want` host runs, best first (containerd's platforms.Only): itself, then
// older members of its family — amd64 vN runs vN-1 … v1 and 386; arm/vN runs vN-1 … v5;
// arm64 runs arm/v8 … v5.
export function compatiblePlatforms(want: Platform): Platform[] {
  const w = normalizePlatform(want);
  const out: Platform[] = [w];
  const add = (architecture: string, variant?: string): void => {
    out.push(normalizePlatform({ os: w.os, architecture, variant }));
  };
  const level = (v: string | undefined): number => Number((v ?? '').replace(/^v/, '')) || 0;
  if (w.architecture === 'amd64') {
    for (let n = level(w.variant) - 1; n >= 1; n--) add('amd64', `v${n}`);
    add('386');
  } else if (w.architecture === 'arm') {
    for (let n = level(w.variant) - 1; n >= 5; n--) add('arm', `v${n}`);
  } else if (w.architecture === 'arm64' && (w.variant === undefined || /^v[89](\.\d+)?$/.test(w.variant))) {
    for (let n = 8; n >= 5; n--) add('arm', `v${n}`);
  }
  return out;
}

// The best entry of an index for `want` (default: the host), or a NotFoundError
// naming the platform asked for, the image (`what`, when given) and the platforms it has.
export function selectManifest(manifests: Descriptor[], want: Platform = hostPlatform(), what?: string): Descriptor {
  for (const candidate of compatiblePlatforms(want)) {
    const hit = manifests.find((m) => matchPlatform(candidate, m.platform));
    if (hit) return hit;
  }
  const available = [
    ...new Set(manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => formatPlatform(m.platform!))),
  ];
  const of = what ? ` of ${what}` : '';
  const has = available.length ? `: it has ${available.join(', ')}` : ': the index lists no platforms';
  throw new NotFoundError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries${of}${has}`, {
    hint: available.length ? `build or pull for one of ${available.join(', ')} (--platform), or use a base image that has ${formatPlatform(want)}` : 'use an image with platform entries',
  });
}

// The automatic platform ARGs of a Dockerfile, as BuildKit defines them: the build
// platform (where RUN of a `FROM --platform=$BUILDPLATFORM` stage runs) and the
// target platform (what the image is for), both normalised. On linux/arm64:
// TARGETPLATFORM=linux/arm64, TARGETARCH=arm64, TARGETVARIANT="".
export function platformArgs(target: Platform, build: Platform): [string, string][] {
  const t = normalizePlatform(target);
  const b = normalizePlatform(build);
  return [
    ['BUILDPLATFORM', formatPlatform(b)],
    ['BUILDOS', b.os],
    ['BUILDARCH', b.architecture],
    ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(t)],
    ['TARGETOS', t.os],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
  ];
}

// The directory of a platform in a multi-platform local or tar output, as
// BuildKit names it: the normal form with "/" → "_" ("linux_arm_v7").
export function platformDirName(p: Platform): string {
  return formatPlatform(p).replace(/\//g, '_');
}
