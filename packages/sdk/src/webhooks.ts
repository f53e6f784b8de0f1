import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AgentWebhookEvent, Run, RunWebhookEvent } from '@runlog/core';
import { RunlogWebhookError } from './errors.js';

/** What a Runlog webhook delivery's body holds. */
export type WebhookMessage =
  | {
      /** The delivery's id, also in `Runlog-Webhook-Id`: the same on every retry. */
      id: string;
      type: RunWebhookEvent;
      created_at: string;
      data: {
        /** The run as `GET /runs/:id` answered it when it ended (without steps). */
        run: Run;
        /** The run its agent's retry policy queued for it, or null when none will follow. */
        retry: { id: string; attempt: number; queued_at: string } | null;
      };
    }
  | {
      id: string;
      /**
       * The runs an agent started in the last 24 hours cost its `max_cost_usd_24h` or more
       * (its queued runs wait from now), or cost less again (the window moved on, or the
       * budget was raised or cleared).
       */
      type: AgentWebhookEvent;
      created_at: string;
      data: {
        agent: { id: string; name: string; max_cost_usd_24h: number | null };
        cost_usd_24h: number;
        /** Its queued runs: held back when over, free to go when back under. */
        queued_runs: number;
        /** When it reached the budget. */
        over_budget_since: string;
      };
    }
  | {
      id: string;
      type: 'ping';
      created_at: string;
      data: { webhook: { id: string; url: string; project_id: string } };
    };

export interface VerifyWebhookOptions {
  /** How old a signature may be, in seconds (default 300): older ones are refused as replays. */
  toleranceSec?: number;
  /** The time to check against, in epoch ms (default now). */
  now?: number;
}

/**
 * Checks a Runlog webhook delivery's `Runlog-Signature` (`t=<unix s>,v1=<hex HMAC-SHA256 of
 * "<t>.<raw body>">`) with the endpoint's secret, and answers the parsed body. Throws
 * `RunlogWebhookError` when the header is missing or malformed, the signature does not match,
 * or it is older than `toleranceSec`. Pass the body exactly as received (a re-serialized
 * object would not match).
 * @example
 * const event = verifyWebhook(process.env.RUNLOG_WEBHOOK_SECRET!, rawBody, req.headers['runlog-signature']);
 * if (event.type === 'run.failed') await page(event.data.run);
 */
export function verifyWebhook(
  secret: string,
  rawBody: string | Uint8Array,
  signatureHeader: string | readonly string[] | null | undefined,
  options: VerifyWebhookOptions = {},
): WebhookMessage {
  const header = Array.isArray(signatureHeader) ? signatureHeader.join(',') : signatureHeader;
  if (typeof header !== 'string' || header.trim() === '')
    throw new RunlogWebhookError('no Runlog-Signature header');
  let t: number | undefined;
  const macs: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value = ''] = part.trim().split('=', 2) as [string, string?];
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) macs.push(Buffer.from(value, 'hex'));
  }
  if (t === undefined || macs.length === 0)
    throw new RunlogWebhookError('Runlog-Signature is not of the form t=<unix s>,v1=<hex>');
  const body = typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8');
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  if (!macs.some((mac) => timingSafeEqual(mac, want)))
    throw new RunlogWebhookError('the signature does not match the body and secret');
  const tolerance = options.toleranceSec ?? 300;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - t) > tolerance)
    throw new RunlogWebhookError(
      `the signature was made ${Math.abs(now - t)} s from now, past the ${tolerance} s tolerance`,
    );
  try {
    return JSON.parse(body) as WebhookMessage;
  } catch {
    throw new RunlogWebhookError('the body is not JSON');
  }
}
