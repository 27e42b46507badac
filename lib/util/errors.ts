// The one catalogue of img's errors. Every error a user can cause or meet is an
// ImgError subclass with a stable `code` (IMG_ERR_*): callers recognise errors
// by class (`instanceof`) or by `code`, never by parsing `message` or `name`,
// so messages stay free to improve. The CLI prints `message` (one line) and
// `hint` (what to do); --debug adds `detail` and the stack.
//
// Pure TypeScript (no node: imports): the frontend bundles for a neutral
// platform and its DockerfileError derives from here.

export interface ImgErrorOptions {
  hint?: string;
  detail?: string;
  cause?: unknown;
  exitCode?: number;
}

export class ImgError extends Error {
  readonly code: string = 'IMG_ERR';
  readonly hint?: string;
  readonly detail?: string;
  readonly exitCode: number;
  constructor(message: string, opts: ImgErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ImgError';
    this.hint = opts.hint;
    this.detail = opts.detail;
    this.exitCode = opts.exitCode ?? 1;
  }
}

// A flag, argument or option value the user gave is wrong or unknown.
export class UsageError extends ImgError {
  override readonly code: string = 'IMG_ERR_USAGE';
}

// A malformed glob pattern (Go's filepath.ErrBadPattern, with the reason): util/glob.ts.
export class BadPatternError extends UsageError {
  override readonly code: string = 'IMG_ERR_BAD_PATTERN';
  readonly pattern: string;
  readonly reason: string;
  constructor(pattern: string, reason: string, opts: ImgErrorOptions = {}) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}: ${reason}`, opts);
    this.pattern = pattern;
    this.reason = reason;
  }
}

// Something named by the user does not exist: an image, a file, a stage, a context.
export class NotFoundError extends ImgError {
  override readonly code: string = 'IMG_ERR_NOT_FOUND';
}

// A valid request img cannot honour (a feature, platform or format it lacks).
export class UnsupportedError extends ImgError {
  override readonly code: string = 'IMG_ERR_UNSUPPORTED';
}

// The Dockerfile (or a word in it) is wrong; frontend/dockerfile/errors.ts adds the location.
export class DockerfileSyntaxError extends ImgError {
  override readonly code: string = 'IMG_ERR_DOCKERFILE';
}

// A registry answered with an error, or could not be reached. `status` is the
// HTTP status when it answered (callers retry 5xx and 429, never 4xx).
export class RegistryError extends ImgError {
  override readonly code: string = 'IMG_ERR_REGISTRY';
  readonly status?: number;
  constructor(message: string, opts: ImgErrorOptions & { status?: number } = {}) {
    super(message, opts);
    this.status = opts.status;
  }
}

// The registry refused our credentials (401/403 after authenticating).
export class AuthError extends RegistryError {
  override readonly code: string = 'IMG_ERR_AUTH';
}

// A connection, response header or body made no progress in time.
export class TimeoutError extends RegistryError {
  override readonly code: string = 'IMG_ERR_TIMEOUT';
}

// Bytes that do not match their digest, size or format (a corrupt blob or layer).
export class ContentError extends ImgError {
  override readonly code: string = 'IMG_ERR_CONTENT';
}

// A build step (RUN, COPY, ...) failed.
export class StepError extends ImgError {
  override readonly code: string = 'IMG_ERR_STEP';
}

// The host lacks something img needs (user namespaces, runc, the addon, disk space).
export class HostError extends ImgError {
  override readonly code: string = 'IMG_ERR_HOST';
}

// The disk holding the state dir or a snapshot is full.
export class DiskFullError extends HostError {
  override readonly code: string = 'IMG_ERR_DISK_FULL';
}

// A lock held by another img process (taken without waiting). `opts` names
// what the lock guards when that says more than the lock file's path.
export class LockBusyError extends ImgError {
  override readonly code: string = 'IMG_ERR_LOCK_BUSY';
  readonly path: string;
  constructor(file: string, mode: 'shared' | 'exclusive', opts: { message?: string; hint?: string } = {}) {
    super(opts.message ?? `${file} is locked by another process (wanted ${mode} lock)`, {
      hint: opts.hint ?? 'another img process is using this state; wait for it to finish or retry',
    });
    this.path = file;
  }
}

// The operation was interrupted (Ctrl-C, a signal, or a sibling step failing).
export class AbortError extends ImgError {
  override readonly code: string = 'IMG_ERR_ABORTED';
  constructor(message = 'the operation was aborted', opts: ImgErrorOptions = {}) {
    super(message, { exitCode: 130, ...opts });
  }
}

// The codes, for readers who match on them (e.g. JSON output, tests).
export const ErrorCodes = {
  IMG_ERR: ImgError,
  IMG_ERR_USAGE: UsageError,
  IMG_ERR_BAD_PATTERN: BadPatternError,
  IMG_ERR_NOT_FOUND: NotFoundError,
  IMG_ERR_UNSUPPORTED: UnsupportedError,
  IMG_ERR_DOCKERFILE: DockerfileSyntaxError,
  IMG_ERR_REGISTRY: RegistryError,
  IMG_ERR_AUTH: AuthError,
  IMG_ERR_TIMEOUT: TimeoutError,
  IMG_ERR_CONTENT: ContentError,
  IMG_ERR_STEP: StepError,
  IMG_ERR_HOST: HostError,
  IMG_ERR_DISK_FULL: DiskFullError,
  IMG_ERR_LOCK_BUSY: LockBusyError,
  IMG_ERR_ABORTED: AbortError,
} as const;

// True when `err` or anything it wraps (cause, AggregateError members) is an
// instance of `cls`. Wrapping layers (the solver, progress) keep the original
// as `cause`, so recognition never needs the message.
export function findError<T extends Error>(err: unknown, cls: abstract new (...args: never[]) => T, depth = 0): T | undefined {
  if (!err || typeof err !== 'object' || depth > 8) return undefined;
  if (err instanceof cls) return err;
  const e = err as { cause?: unknown; errors?: unknown[] };
  const viaCause = findError(e.cause, cls, depth + 1);
  if (viaCause) return viaCause;
  if (Array.isArray(e.errors)) for (const x of e.errors) {
    const found = findError(x, cls, depth + 1);
    if (found) return found;
  }
  return undefined;
}

// Ours, Node's (code ABORT_ERR: streams, fs, child_process) or the platform's
// DOMException that AbortSignal.throwIfAborted() raises (a standard class whose
// kind is only told by its name).
export function isAbortError(err: unknown): boolean {
  if (err instanceof AbortError) return true;
  if (typeof DOMException !== 'undefined' && err instanceof DOMException) return err.name === 'AbortError';
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ABORT_ERR';
}

// The class for a failed system call whose errno says the host is at fault: a
// full disk or quota (DiskFullError), a refused permission or a read-only file
// system (HostError); undefined for anything else.
export function hostErrorClass(err: unknown): typeof HostError | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (code === 'ENOSPC' || code === 'EDQUOT') return DiskFullError;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return HostError;
  return undefined;
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
