import { ERROR_STATUS, type ErrorCode } from '@runlog/core';
import type { z } from 'zod';

/** A failure the API reports to its caller: one code from a closed set, a message, details. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown[] | undefined;

  /** Seconds after which the request may be sent again (the Retry-After header). */
  retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, details?: unknown[]) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }

  /**
   * A 429: the server is behind and the caller should send again after `seconds`.
   * @example throw AppError.busy('the write path is behind', 1);
   */
  static busy(message: string, seconds: number): AppError {
    const error = new AppError('rate_limited', `${message}; retry after ${seconds} s`);
    error.retryAfterSeconds = seconds;
    return error;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  static notFound(what: string, id: string): AppError {
    return new AppError('not_found', `${what} ${id} not found`);
  }

  /**
   * A 400 about one field, worded like `parse` words a schema's: `<field>: <message>`.
   * @example throw AppError.invalid('query.to', 'must not be before from');
   */
  static invalid(field: string, message: string): AppError {
    return new AppError('invalid_input', `${field}: ${message}`, [{ field, message }]);
  }

  /**
   * A 400 about each of `issues` (at least one), its message naming the first and counting
   * the rest, as `parse` words a schema's.
   * @example throw AppError.invalidFields([{ field: 'body.a', message: 'x' }, { field: 'body.b', message: 'y' }]);
   */
  static invalidFields(issues: readonly FieldIssue[]): AppError {
    const [first] = issues;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    return new AppError('invalid_input', `${first!.field}: ${first!.message}${more}`, [...issues]);
  }
}

export interface FieldIssue {
  field: string;
  message: string;
}

/** zod issues as `{field, message}` with dotted paths prefixed by where they came from. */
export function fieldIssues(error: z.ZodError, where?: string): FieldIssue[] {
  const named = (path: readonly PropertyKey[]) =>
    [where, path.map(String).join('.')].filter(Boolean).join('.') || (where ?? '(root)');
  return error.issues.flatMap((issue) =>
    // a strict object's unknown fields come as one issue on the object: each is named
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          field: named([...issue.path, key]),
          message: 'unknown field',
        }))
      : [{ field: named(issue.path), message: issue.message }],
  );
}

/**
 * Parses `value` with `schema`, throwing a 400 `invalid_input` that names each bad field.
 * @example const body = parse(StartRunBody, request.body, 'body');
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error, where);
  throw issues.length > 0
    ? AppError.invalidFields(issues)
    : new AppError('invalid_input', `invalid ${where}`, issues);
}

/** What `outageLogger` writes to: a logger's `error` (Fastify's, pino's). */
export interface ErrorLog {
  error(fields: object, message: string): void;
}

/**
 * The log of requests answered 503 because the database does not answer: the first with its
 * error, then at most one line per `windowMs` saying how many more there were. An outage
 * answers every request 503; logging each with its stack wrote hundreds of lines a second
 * and buried what came before it.
 * @example const logOutage = outageLogger(); logOutage(request.log, error, Date.now());
 */
export function outageLogger(
  windowMs = 10_000,
): (log: ErrorLog, error: unknown, now: number) => void {
  let loggedAt = Number.NEGATIVE_INFINITY;
  let since = 0;
  return (log, error, now) => {
    if (now - loggedAt < windowMs) {
      since += 1;
      return;
    }
    log.error(
      { err: error, ...(since > 0 ? { more_503_since_last_line: since } : {}) },
      since > 0
        ? `database unavailable: request answered 503 (and ${since} more since the last such line)`
        : 'database unavailable: request answered 503',
    );
    loggedAt = now;
    since = 0;
  };
}
