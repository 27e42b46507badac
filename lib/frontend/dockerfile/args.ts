// Build arguments: the predefined proxy ARGs, the history form of a RUN that
// has ARGs in scope ("|2 A=1 B=2 /bin/sh -c make"), and the unused-build-arg warning.

export const PROXY_ARGS = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];

export const PLATFORM_ARGS = [
  'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
  'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT',
];

// Arguments BuildKit consumes itself; passing them never warns.
const BUILTIN_ARGS = new Set([
  ...PROXY_ARGS, ...PLATFORM_ARGS, 'TARGETSTAGE',
  'BUILDKIT_SYNTAX', 'BUILDKIT_INLINE_CACHE', 'BUILDKIT_MULTI_PLATFORM', 'BUILDKIT_CACHE_MOUNT_NS',
  'BUILDKIT_CONTEXT_KEEP_GIT_DIR', 'BUILDKIT_SANDBOX_HOSTNAME', 'SOURCE_DATE_EPOCH',
]);

export interface DeclaredArg {
  key: string;
  value: string | undefined;
}

// The RUN history prefix: every ARG declared in the stage so far, in order,
// valued from the current environment (so ENV shadows) or the ARG's value.
export function runCommandString(args: string[], declared: DeclaredArg[], env: ReadonlyMap<string, string>): string {
  const kv: string[] = [];
  const idx = new Map<string, number>();
  for (const a of declared) {
    const v = env.get(a.key) ?? a.value ?? '';
    const s = `${a.key}=${v}`;
    const at = idx.get(a.key);
    if (at !== undefined) kv[at] = s;
    else {
      idx.set(a.key, kv.length);
      kv.push(s);
    }
  }
  const head = kv.length ? [`|${kv.length}`, ...kv] : [];
  return [...head, ...args].join(' ');
}

export function unusedBuildArgs(buildArgs: Record<string, string> | undefined, used: Set<string>): string[] {
  if (!buildArgs) return [];
  return Object.keys(buildArgs)
    .filter((k) => !used.has(k) && !BUILTIN_ARGS.has(k))
    .sort();
}

export function unusedBuildArgsWarning(unused: string[]): string {
  return `[Warning] One or more build-args [${unused.join(' ')}] were not consumed`;
}

// Proxy variables from --build-arg, handed to RUN without entering its cache key
// or history. As BuildKit's ProxyEnv: the name matches in any case, and RUN sees
// the value under both spellings (HTTP_PROXY and http_proxy); given in both cases,
// the lower-case one wins.
export function proxyEnv(buildArgs: Record<string, string> | undefined): string[] {
  if (!buildArgs) return [];
  const out: string[] = [];
  for (const name of ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy']) {
    const given = Object.keys(buildArgs).filter((k) => k.toLowerCase() === name);
    if (given.length === 0) continue;
    const value = buildArgs[given.includes(name) ? name : given[0]];
    out.push(`${name.toUpperCase()}=${value}`, `${name}=${value}`);
  }
  return out;
}
