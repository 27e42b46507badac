// Platforms ("linux/arm64/v8") the way docker and containerd spell and match them:
// architecture names are normalized (x86_64 → amd64, aarch64 → arm64), arm defaults to
// variant v7 and arm64 to v8, and a host can also run older members of its family
// (arm64 runs arm/v7, v6, v5), so selection walks an ordered preference list.
import { endianness } from 'node:os';
import { ImgError } from '../util/errors';
import type { Descriptor, Platform } from './types';

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  x64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  ia32: { architecture: '386' },
};

const KNOWN_OS = new Set([
  'linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'plan9', 'js', 'wasip1', 'android', 'ios',
]);

// Normalized copy: lowercase, aliases resolved, default variants made explicit
// (arm → v7, arm64 → v8) and amd64's baseline "v1" dropped, so two platforms
// compare equal exactly when docker would consider them the same.
export function normalizePlatform(p: Platform): Platform {
  const os = (p.os || 'linux').toLowerCase();
  let architecture = (p.architecture || '').toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    variant = variant ?? alias.variant;
  }
  if (variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'arm64') {
    variant = variant ?? 'v8';
  } else if (architecture === 'arm') {
    variant = variant ?? 'v7';
  } else if (architecture === 'amd64' && variant === 'v1') {
    variant = undefined;
  }
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

// The platform this process runs on.
export function hostPlatform(): Platform {
  let architecture: string = process.arch;
  let variant: string | undefined;
  switch (process.arch) {
    case 'x64':
      architecture = 'amd64';
      break;
    case 'arm64':
      variant = 'v8';
      break;
    case 'arm': {
      // Node records the arm version it was built for (6 or 7).
      const v = (process.config.variables as Record<string, unknown>).arm_version;
      variant = `v${typeof v === 'string' || typeof v === 'number' ? v : 7}`;
      break;
    }
    case 'ia32':
      architecture = '386';
      break;
    case 'ppc64':
      // Node reports ppc64 for both endians; Linux distributions ship ppc64le.
      architecture = endianness() === 'LE' ? 'ppc64le' : 'ppc64';
      break;
    default:
      break;
  }
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return normalizePlatform({ os, architecture, variant });
}

// "linux/arm/v7", "linux/amd64", "arm64" or "linux" → a normalized Platform.
// A lone component is an OS when it is a known one, else an architecture on linux.
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split('/');
  const bad = (): ImgError =>
    new ImgError(`invalid platform "${spec}"`, { hint: 'use OS/ARCH[/VARIANT], for example linux/amd64 or linux/arm/v7' });
  if (parts.length === 0 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) throw bad();
  if (parts.length === 1) {
    const one = parts[0].toLowerCase();
    if (KNOWN_OS.has(one)) return normalizePlatform({ os: one, architecture: hostPlatform().architecture, variant: hostPlatform().variant });
    return normalizePlatform({ os: 'linux', architecture: one });
  }
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

// "linux/arm/v7"; arm64's default variant is left out ("linux/arm64"), as users write it.
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  const variant = n.architecture === 'arm64' && n.variant === 'v8' ? undefined : n.variant;
  return [n.os, n.architecture, variant].filter(Boolean).join('/');
}

// Platforms a `want` host can run, best first: itself, then older variants of
// its family (arm64 runs arm/v7 code, arm/v7 runs v6 and v5; amd64 v3 runs v2 and v1).
export function compatiblePlatforms(want: Platform): Platform[] {
  const w = normalizePlatform(want);
  const out: Platform[] = [w];
  const add = (architecture: string, variant?: string): void => {
    out.push(normalizePlatform({ os: w.os, architecture, variant }));
  };
  const level = (v: string | undefined): number => Number((v ?? 'v0').replace(/^v/, '')) || 0;
  if (w.architecture === 'arm64') {
    for (const v of ['v7', 'v6', 'v5']) add('arm', v);
  } else if (w.architecture === 'arm') {
    for (let n = level(w.variant) - 1; n >= 5; n--) add('arm', `v${n}`);
  } else if (w.architecture === 'amd64') {
    for (let n = level(w.variant) - 1; n >= 2; n--) add('amd64', `v${n}`);
    if (w.variant) add('amd64');
  }
  return out;
}

// Exact match after normalization (os.version is ignored: it only matters on Windows).
export function matchPlatform(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

// The best entry of an index for `want` (default: the host), or an ImgError listing what there is.
export function selectManifest(manifests: Descriptor[], want: Platform = hostPlatform()): Descriptor {
  for (const candidate of compatiblePlatforms(want)) {
    const hit = manifests.find((m) => matchPlatform(candidate, m.platform));
    if (hit) return hit;
  }
  const available = manifests
    .filter((m) => m.platform && m.platform.os !== 'unknown')
    .map((m) => formatPlatform(m.platform!));
  throw new ImgError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries`, {
    hint: available.length ? `available platforms: ${[...new Set(available)].join(', ')} — choose one with --platform` : 'the index lists no platforms',
  });
}
