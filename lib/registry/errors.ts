// Registry failures as catalogue errors (util/errors.ts) that name the registry,
// repository and status, with a hint.
import { AuthError, NotFoundError, RegistryError, TimeoutError } from '../util/errors';
import { escapeControls } from '../util/escape';
import { describeStall, REDIRECT_LOOP, stallHint, stallOf, type Response } from './transport';

export interface ErrorContext {
  registry: string;
  repository?: string;
  // What we were doing: "manifest latest", "blob sha256:…", "upload".
  what?: string;
  // The blob, when it is one (progress rows are keyed by it).
  digest?: string;
}

function where(ctx: ErrorContext): string {
  return ctx.repository ? `${ctx.registry}/${ctx.repository}` : ctx.registry;
}

// The registry's own error text: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]},
// one line, its control characters escaped (any server or proxy may answer).
export async function readErrorBody(res: Response): Promise<string> {
  return escapeControls(await errorBodyText(res), { oneLine: true });
}

async function errorBodyText(res: Response): Promise<string> {
  let text = '';
  try {
    text = (await res.body.head(4096)).toString('utf8'); // the rest (maybe gigabytes) is dropped
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (parsed.errors?.length) return parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ').slice(0, 1000);
  } catch {
    // not JSON
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

// 401/403 → AuthError, 404 → NotFoundError, anything else a RegistryError
// carrying the status (the client retries 5xx and 429 by it).
export function statusError(ctx: ErrorContext, status: number, detail: string): RegistryError | NotFoundError {
  const subject = ctx.what ? `${ctx.what} from ${where(ctx)}` : where(ctx);
  const message = `${subject}: HTTP ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 401 || status === 403) {
    return new AuthError(message, { status, hint: `run \`img login ${ctx.registry}\` with an account that may access ${ctx.repository ?? 'this registry'}` });
  }
  if (status === 404) return new NotFoundError(message, { hint: 'check the image name and tag (or digest) and that it exists in that registry' });
  let hint: string | undefined;
  if (status === 429) hint = 'the registry is rate-limiting; retry later';
  else if (status >= 500) hint = 'the registry failed; retry later or check its logs';
  else if (status >= 400) hint = `the registry refused the request${detail ? ' (its reason is above)' : ''}; check the image reference, or that the registry (or a proxy in front of it) supports this operation`;
  return new RegistryError(message, { status, hint });
}

export async function responseError(ctx: ErrorContext, res: Response): Promise<RegistryError | NotFoundError> {
  return statusError(ctx, res.status, await readErrorBody(res));
}

// Codes Node gives a failed TLS verification, and a connection that timed out in the kernel
// (img's own stall limits are told apart by stallOf).
const TLS_VERIFY_CODE = /^(ERR_TLS_CERT_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;
const TIMEOUT_CODES = new Set(['ETIMEDOUT']);

// A failed exchange (after `attempts` tries). A stall names what was asked for and
// the limit that ran out, with the setting that raises it.
export function connectionError(ctx: ErrorContext, url: string, err: unknown, tlsMismatch: boolean, attempts = 1): RegistryError {
  const stall = stallOf(err);
  if (stall) {
    const subject = ctx.what ? `${ctx.what} from ${where(ctx)}` : where(ctx);
    const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
    return new TimeoutError(`${subject}: ${describeStall(stall)}${tries}, at ${url}`, { hint: stallHint(stall), cause: err });
  }
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  if (e.code === REDIRECT_LOOP) {
    const subject = ctx.what ? `${ctx.what} from ${where(ctx)}` : where(ctx);
    return new RegistryError(`${subject}: ${e.message} (asked at ${url})`, {
      hint: 'the registry (or its storage backend) redirects in a loop; check its redirect/storage configuration',
      cause: err,
    });
  }
  const reason = e.cause?.message ?? e.message ?? String(err);
  const code = e.cause?.code ?? e.code;
  if (tlsMismatch) {
    return new RegistryError(`cannot reach ${where(ctx)} over HTTPS (${url}): ${reason}`, {
      hint: `the registry seems to speak plain HTTP; pass --insecure-registry to use it`,
      cause: err,
    });
  }
  if (code && TLS_VERIFY_CODE.test(code)) {
    return new RegistryError(`TLS verification failed for ${where(ctx)} (${url}): ${reason}`, {
      hint: 'add the registry\'s CA to the system trust store (update-ca-certificates) or NODE_EXTRA_CA_CERTS, or pass --insecure-registry',
      cause: err,
    });
  }
  const message = `cannot reach ${where(ctx)} (${url}): ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`;
  const opts = { hint: 'check the registry address and that it is running', cause: err };
  return code && TIMEOUT_CODES.has(code) ? new TimeoutError(message, opts) : new RegistryError(message, opts);
}
