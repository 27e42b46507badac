// Registry failures as ImgErrors that name the registry, repository and status, with a hint.
import { ImgError } from '../util/errors';
import type { Response } from './transport';

export interface ErrorContext {
  registry: string;
  repository?: string;
  // What we were doing: "manifest latest", "blob sha256:…", "upload".
  what?: string;
}

function where(ctx: ErrorContext): string {
  return ctx.repository ? `${ctx.registry}/${ctx.repository}` : ctx.registry;
}

// The registry's own error text: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}.
export async function readErrorBody(res: Response): Promise<string> {
  let text = '';
  try {
    text = (await res.body.text()).slice(0, 4096);
  } catch {
    return '';
  }
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (parsed.errors?.length) return parsed.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not JSON
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

export function statusError(ctx: ErrorContext, status: number, detail: string): ImgError {
  const subject = ctx.what ? `${ctx.what} from ${where(ctx)}` : where(ctx);
  const suffix = detail ? `: ${detail}` : '';
  let hint: string | undefined;
  if (status === 401 || status === 403) {
    hint = `run \`img login ${ctx.registry}\` with an account that may access ${ctx.repository ?? 'this registry'}`;
  } else if (status === 404) {
    hint = 'check the image name and tag (or digest) and that it exists in that registry';
  } else if (status === 429) {
    hint = 'the registry is rate-limiting; retry later';
  } else if (status >= 500) {
    hint = 'the registry failed; retry later or check its logs';
  }
  return new ImgError(`${subject}: HTTP ${status}${suffix}`, { hint, exitCode: 1 });
}

export async function responseError(ctx: ErrorContext, res: Response): Promise<ImgError> {
  return statusError(ctx, res.status, await readErrorBody(res));
}

export function connectionError(ctx: ErrorContext, url: string, err: unknown, tlsMismatch: boolean): ImgError {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const reason = e.cause?.message ?? e.message ?? String(err);
  const code = e.cause?.code ?? e.code;
  if (tlsMismatch) {
    return new ImgError(`cannot reach ${where(ctx)} over HTTPS (${url}): ${reason}`, {
      hint: `the registry seems to speak plain HTTP; pass --insecure-registry to use it`,
      cause: err,
    });
  }
  if (/certificate|self[- ]signed|CERT_|UNABLE_TO_VERIFY/i.test(`${reason} ${code ?? ''}`)) {
    return new ImgError(`TLS verification failed for ${where(ctx)} (${url}): ${reason}`, {
      hint: 'add the registry\'s CA to the system trust store (update-ca-certificates) or NODE_EXTRA_CA_CERTS, or pass --insecure-registry',
      cause: err,
    });
  }
  return new ImgError(`cannot reach ${where(ctx)} (${url}): ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`, {
    hint: 'check the registry address and that it is running',
    cause: err,
  });
}
