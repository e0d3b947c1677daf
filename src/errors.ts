/**
 * One error family for everything a user or client can get wrong. The CLI prints `message` and exits
 * non-zero without a stack trace; the API answers 4xx with `{error: {code, message, field?}}`.
 */
export type ErrorCode =
  | "bad_input"
  | "bad_config"
  | "bundle_invalid"
  | "bundle_not_found"
  | "model_not_found"
  | "data_not_found"
  | "validation_failed"
  | "run_not_found"
  | "run_locked"
  | "trainer_failed"
  | "conflict"
  | "not_found";

export class ChurnopsError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  /** Exit code the CLI uses; 2 = the user's input or environment is wrong. */
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { field?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ChurnopsError";
    this.code = code;
    this.field = options.field;
    this.exitCode = options.exitCode ?? 2;
  }
}

export function isChurnopsError(err: unknown): err is ChurnopsError {
  return err instanceof ChurnopsError;
}
