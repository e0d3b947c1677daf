import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { type ErrorCode, isChurnopsError } from "../errors.js";
import type { ApiViolation } from "./validation.js";

/** A refusal the API answers with a 4xx (or a 503): `{error: {code, message, field?, violations?}}`. */
export class ApiError extends Error {
  readonly field: string | undefined;
  readonly violations: ApiViolation[] | undefined;

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options: { field?: string; violations?: ApiViolation[] } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.field = options.field;
    this.violations = options.violations;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string; violations?: ApiViolation[] };
}

/** 422 listing every violation (up to a cap), led by the first one's field. */
export function validationError(violations: readonly ApiViolation[], total: number): ApiError {
  const first = violations[0];
  const more = total > violations.length ? ` (${total - violations.length} more not listed)` : "";
  const message = `${total} field${total === 1 ? "" : "s"} cannot be scored: ${first?.message ?? "invalid"}${total > 1 ? "; …" : ""}${more}`;
  return new ApiError(422, "validation_failed", message, { ...(first === undefined ? {} : { field: first.field }), violations: [...violations] });
}

const CHURNOPS_STATUS: Partial<Record<ErrorCode, number>> = {
  bad_input: 400,
  validation_failed: 422,
  not_found: 404,
  conflict: 409,
  bundle_invalid: 409,
  bundle_not_found: 409,
  model_not_found: 409,
};

/** Fastify's own 4xx codes, renamed for clients. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "malformed_json",
  FST_ERR_CTP_EMPTY_JSON_BODY: "malformed_json",
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "bad_request",
};

function fastifyCode(err: FastifyError, status: number): string {
  const known = FASTIFY_CODES[err.code];
  if (known !== undefined) return known;
  // Body parsing errors from the JSON parser carry no FST code (SyntaxError, prototype poisoning).
  if (status === 400 && (err.name === "SyntaxError" || /JSON|__proto__|constructor/i.test(err.message))) return "malformed_json";
  return status === 413 ? "payload_too_large" : status === 404 ? "not_found" : status === 415 ? "unsupported_media_type" : "bad_request";
}

/**
 * The one error handler: client mistakes keep their 4xx with a clear message; anything else is logged with the
 * request id and answered as a bare 500, never with internals.
 */
export function handleError(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): ErrorBody {
  if (err instanceof ApiError) {
    reply.status(err.statusCode);
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.field !== undefined) body.error.field = err.field;
    if (err.violations !== undefined) body.error.violations = err.violations;
    return body;
  }
  if (isChurnopsError(err)) {
    const status = CHURNOPS_STATUS[err.code] ?? 500;
    if (status >= 500) request.log.error({ err }, "request failed");
    reply.status(status);
    return { error: { code: err.code, message: err.message, ...(err.field === undefined ? {} : { field: err.field }) } };
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    reply.status(status);
    return { error: { code: fastifyCode(err as FastifyError, status), message: err.message } };
  }
  if (status === 503) {
    reply.status(503);
    return { error: { code: "unavailable", message: err.message } };
  }
  request.log.error({ err }, "request failed");
  reply.status(500);
  return { error: { code: "internal", message: `internal error (request ${request.id})` } };
}
