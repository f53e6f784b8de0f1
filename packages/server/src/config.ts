import { z } from 'zod';
import { SENDABLE_KEY } from '@runlog/core';

export const DEFAULT_DB = './.runlog/runlog.db';
export const DEFAULT_PORT = 4680;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_RETENTION_DAYS = 30;
/** The longest a project may keep finished runs (`retention_days`). */
export const MAX_RETENTION_DAYS = 3650;
/** The JSON field size past which a field is stored truncated, unless configured. */
export const DEFAULT_MAX_FIELD_BYTES = 1024 * 1024;
/** The most `--max-field-bytes` takes: a request body's own limit. */
export const MAX_FIELD_BYTES = 64 * 1024 * 1024;

/**
 * A whole number from a number or from text (a flag, a variable). `z.coerce` would read
 * empty text as 0: `RUNLOG_PORT=` bound a random port instead of saying it was empty.
 */
const whole = (schema: z.ZodNumber) =>
  z.preprocess(
    (v) => {
      if (typeof v !== 'string') return v;
      return /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
    },
    schema.int({ message: 'must be a whole number' }),
  );

/** Pino's levels from the fewest lines to the most, and none at all. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The server's configuration after flags and environment are merged and checked. */
export const ServerConfig = z.object({
  db: z
    .string()
    .min(1, 'must not be empty: a SQLite file path or a postgres:// URL')
    .refine(
      (v) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) || /^postgres(ql)?:\/\/[^/]/i.test(v),
      'must be a file path or a postgres:// URL',
    )
    .refine((v) => !/^postgres(ql)?:\/\//i.test(v) || URL.canParse(v), 'is not a valid URL'),
  port: whole(z.number({ message: 'must be a port number (0-65535)' }).min(0).max(65535)),
  host: z.string().min(1, 'must not be empty: an address to listen on, such as 127.0.0.1'),
  adminKey: z
    .string()
    // a key read from a file ends with a newline, which no client sends
    .trim()
    .min(16, 'must be at least 16 characters')
    .max(200)
    // it goes in an `Authorization: Bearer` header, which ends a key at a space
    .regex(SENDABLE_KEY, 'must be printable ASCII without spaces')
    .optional(),
  retentionDays: whole(
    z
      .number({ message: `must be a number of days (1 to ${MAX_RETENTION_DAYS})` })
      .min(1)
      .max(MAX_RETENTION_DAYS),
  ),
  /** JSON fields longer than this many bytes are stored truncated. */
  maxFieldBytes: whole(
    z
      .number({ message: `must be a number of bytes (1024 to ${MAX_FIELD_BYTES})` })
      .min(1024)
      .max(MAX_FIELD_BYTES),
  ).default(DEFAULT_MAX_FIELD_BYTES),
  /** Request bodies over this many bytes are refused with 413. */
  bodyLimit: whole(z.number().min(1024)).default(64 * 1024 * 1024),
  /**
   * Recording events waiting for a group commit past which `/ingest` answers 429 with
   * Retry-After (the SDK waits and sends again) instead of queueing more in memory.
   */
  maxQueuedEvents: whole(z.number().min(1000)).default(50_000),
  /** Where the built dashboard lives; unset serves no dashboard. */
  webRoot: z.string().optional(),
  /** Control plane: grace period before a stop of a running run is forced. */
  cancelGraceMs: whole(z.number().min(0)).default(30_000),
  /** Control plane: how often lapsed leases, passed deadlines and overdue stops are swept. */
  sweepIntervalMs: whole(z.number().min(10)).default(1_000),
  /** Control plane: how often due schedules are looked for. */
  schedulerIntervalMs: whole(z.number().min(10)).default(1_000),
  /** How often due webhook deliveries are looked for (a commit that writes some looks at once). */
  webhookPollMs: whole(z.number().min(10)).default(1_000),
  /** How long a webhook endpoint has to answer. */
  webhookTimeoutMs: whole(z.number().min(10)).default(10_000),
  /**
   * The waits between a failed webhook attempt and the next (default 30 s, 2 min, 10 min,
   * 1 h, 6 h, 16 h); after the last the delivery is given up. Tests shorten them.
   */
  webhookRetryDelaysMs: z
    .array(whole(z.number().min(0)))
    .max(20)
    .optional(),
  /** Whether background jobs (sweeps, scheduler, retention) run in this process. */
  background: z.boolean().default(true),
  /** warn by default: the start prints its own lines; info adds Fastify's, debug every request. */
  logLevel: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('warn'),
});
export type ServerConfig = z.infer<typeof ServerConfig>;
export type ServerConfigInput = z.input<typeof ServerConfig>;

/** Reads the `RUNLOG_*` variables; flags given on the command line win over them. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfigInput {
  return {
    db: env.RUNLOG_DB ?? DEFAULT_DB,
    port: env.RUNLOG_PORT ?? DEFAULT_PORT,
    host: env.RUNLOG_HOST ?? DEFAULT_HOST,
    ...(env.RUNLOG_ADMIN_KEY ? { adminKey: env.RUNLOG_ADMIN_KEY } : {}),
    retentionDays: env.RUNLOG_RETENTION_DAYS ?? DEFAULT_RETENTION_DAYS,
    ...(env.RUNLOG_MAX_FIELD_BYTES !== undefined
      ? { maxFieldBytes: env.RUNLOG_MAX_FIELD_BYTES }
      : {}),
    // `INFO` as other tools' LOG_LEVEL takes it
    ...(env.RUNLOG_LOG_LEVEL
      ? { logLevel: env.RUNLOG_LOG_LEVEL.trim().toLowerCase() as ServerConfig['logLevel'] }
      : {}),
  };
}
