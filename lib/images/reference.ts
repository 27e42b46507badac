// Image references with Docker's normalization (distribution/reference's
// ParseNormalizedNamed + FamiliarString), so `busybox`, `library/busybox`,
// `docker.io/library/busybox:latest` and `index.docker.io/library/busybox`
// all name the same image.
import { UsageError } from '../util/errors';
import type { Digest } from './types';

export interface Reference {
  domain: string; // registry host[:port], "docker.io" for Docker Hub
  path: string; // repository path, "library/busybox"
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

// Grammar from the distribution reference spec.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const NAME_TOTAL_MAX = 255;

function invalid(input: string, why: string): UsageError {
  return new UsageError(`invalid reference "${input}": ${why}`, {
    hint: 'use NAME[:TAG][@sha256:DIGEST] with a lowercase name, e.g. busybox:latest or localhost:5000/team/app:1.0',
  });
}

export function parseReference(input: string): Reference {
  if (typeof input !== 'string' || input === '') throw invalid(String(input ?? ''), 'empty reference');
  if (/^[a-f0-9]{64}$/.test(input)) {
    throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a name');
  }
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(d)) throw invalid(input, `"${d}" is not a valid digest`);
    if (!/^sha256:[a-f0-9]{64}$/.test(d)) {
      throw invalid(input, `unsupported digest "${d}" (only sha256 with 64 lowercase hex characters)`);
    }
    digest = d as Digest;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `"${tag}" is not a valid tag`);
  }
  if (rest === '') throw invalid(input, 'missing repository name');

  // Split the domain off: the first component is a registry host when it
  // contains '.' or ':', is "localhost", or has uppercase letters (which a
  // repository path cannot have).
  let domain = DEFAULT_DOMAIN;
  let remainder = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      remainder = rest.slice(slash + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (!DOMAIN_RE.test(domain)) throw invalid(input, `"${domain}" is not a valid registry host`);
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  if (remainder.toLowerCase() !== remainder) {
    throw invalid(input, `repository name "${remainder}" must be lowercase`);
  }
  for (const comp of remainder.split('/')) {
    if (!PATH_COMPONENT.test(comp)) throw invalid(input, `"${comp}" is not a valid repository name component`);
  }
  if (domain.length + 1 + remainder.length > NAME_TOTAL_MAX) {
    throw invalid(input, `repository name is longer than ${NAME_TOTAL_MAX} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: Reference = { domain, path: remainder };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

// "docker.io/library/busybox" (no tag or digest).
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

function suffix(ref: Reference): string {
  return (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

// The full normalized form, used as the image store's key:
// "docker.io/library/busybox:latest", "localhost:5000/a/b@sha256:…".
export function formatReference(ref: Reference): string {
  return repositoryName(ref) + suffix(ref);
}

// The short form docker prints: "busybox:latest", "jess/img:latest", "localhost:5000/a/b:1".
export function familiarName(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path;
    if (name.startsWith(OFFICIAL_REPO_PREFIX) && name.indexOf('/', OFFICIAL_REPO_PREFIX.length) < 0) {
      name = name.slice(OFFICIAL_REPO_PREFIX.length);
    }
  }
  return name + suffix(ref);
}

// Normalize a user-typed name to the image store's key.
export function normalizeName(input: string): string {
  return formatReference(parseReference(input));
}

// Familiar form of an already-normalized store key; falls back to the key itself.
export function familiarString(name: string): string {
  try {
    return familiarName(parseReference(name));
  } catch {
    return name;
  }
}
