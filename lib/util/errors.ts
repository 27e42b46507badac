// One error type for everything a user can cause. The CLI prints `message`
// (one line) and `hint` (what to do); --debug adds `detail` and the stack.
export class ImgError extends Error {
  readonly hint?: string;
  readonly detail?: string;
  readonly exitCode: number;
  constructor(message: string, opts: { hint?: string; detail?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ImgError';
    this.hint = opts.hint;
    this.detail = opts.detail;
    this.exitCode = opts.exitCode ?? 1;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
