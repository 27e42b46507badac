// Platform strings ("linux/arm64", "linux/arm/v7") and the automatic platform
// ARGs BuildKit defines (TARGETPLATFORM, BUILDARCH, ...). Pure TypeScript.

import type { Platform } from '../../images/types';

const ARCH_ALIASES: Record<string, [string, string?]> = {
  x86_64: ['amd64'],
  'x86-64': ['amd64'],
  aarch64: ['arm64'],
  armhf: ['arm', 'v7'],
  armel: ['arm', 'v6'],
  i686: ['386'],
  i386: ['386'],
};

// Normalizes like containerd's platforms.Normalize: lower-case, known aliases,
// arm defaults to v7, arm64's v8 variant is implied.
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  const alias = ARCH_ALIASES[arch];
  if (alias) {
    arch = alias[0];
    if (alias[1] && !variant) variant = alias[1];
  }
  if (arch === 'arm' && !variant) variant = 'v7';
  if (arch === 'arm' && /^[5-8]$/.test(variant ?? '')) variant = 'v' + variant;
  if (arch === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  const out: Platform = { architecture: arch, os };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

// Parses "os/arch[/variant]" (or a bare arch, which means linux). Returns null when malformed.
export function parsePlatform(s: string): Platform | null {
  const parts = s.trim().split('/');
  if (parts.some((x) => x === '' || !/^[A-Za-z0-9_.-]+$/.test(x))) return null;
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0] });
  if (parts.length > 3) return null;
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

// The automatic ARGs for a build/target platform pair.
export function platformArgs(target: Platform, build: Platform): [string, string][] {
  return [
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ];
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
