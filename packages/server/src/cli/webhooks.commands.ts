import { InvalidArgumentError, type Command } from 'commander';
import {
  WEBHOOK_DELIVERY_STATUSES,
  WEBHOOK_EVENTS,
  type CreatedWebhook,
  type WebhookDelivery,
  type WebhookDeliveryStatus,
  type WebhookEndpoint,
  type WebhookEvent,
  type WebhookTestResult,
} from '@runlog/core';
import { CliError } from './client.js';
import { clientFor, printJson, withClient, type ClientFlags } from './data.commands.js';
import { Palette, formatRelative, printable, table } from './format.js';
import type { CliIo } from './io.js';
import { idArg, idListArg, intArg, oneOf, textArg } from './options.js';

/** A comma list of webhook events, each one of `WEBHOOK_EVENTS`. */
function eventsArg(value: string): WebhookEvent[] {
  const check = oneOf('--events', WEBHOOK_EVENTS);
  return value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map(check);
}

/**
 * A webhook's URL: `http://` or `https://`, as the server takes one; said as bad usage (exit
 * 2) before any request, as the other arguments are.
 */
function webhookUrlArg(value: string): string {
  const text = textArg('<url>', 2048)(value);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // said below
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:')
    throw new InvalidArgumentError(
      `<url> must be an http:// or https:// URL, not ${JSON.stringify(text)}`,
    );
  return text;
}

const path = (id: string, rest = '') => `/api/v1/webhooks/${encodeURIComponent(id)}${rest}`;

/** How a delivery stands, in one colored word. */
function deliveryStatus(status: WebhookDeliveryStatus, p: Palette): string {
  return status === 'delivered'
    ? p.paint('green', status)
    : status === 'failed'
      ? p.paint('red', status)
      : p.paint('yellow', status);
}

/** `webhooks list|create|enable|disable|delete|test|deliveries|redeliver` (admin key). */
export function registerWebhookCommands(program: Command, io: CliIo): void {
  const palette = () => Palette.for(io.stdout, io.env);
  const webhooks = program
    .command('webhooks')
    .description(
      'outgoing webhooks on run outcomes and agent budgets (an admin key): list, create, test, delete',
    );

  withClient(webhooks.command('list').description("the project's webhook endpoints")).action(
    async (flags: ClientFlags) => {
      const list = await clientFor(flags, io).request<{ webhooks: WebhookEndpoint[] }>(
        'GET',
        '/api/v1/webhooks',
      );
      if (flags.json) return printJson(io, list);
      const shown = printable(list.webhooks);
      if (shown.length === 0) {
        io.stdout.write('no webhooks; create one with: runlog webhooks create <url>\n');
        return;
      }
      const p = palette();
      io.stdout.write(
        table(
          [
            { header: 'ID', whole: true },
            { header: 'URL', whole: true },
            { header: 'EVENTS' },
            { header: 'AGENTS', optional: 1 },
            { header: 'ENABLED' },
            { header: 'LAST DELIVERY', optional: 2 },
          ],
          shown.map((w) => [
            w.id,
            w.url,
            w.events.join(','),
            w.agent_ids?.join(',') ?? 'all',
            w.enabled ? 'yes' : p.paint('dim', 'paused'),
            w.last_delivery
              ? `${deliveryStatus(w.last_delivery.status, p)} ${w.last_delivery.event}` +
                `${w.last_delivery.status_code !== null ? ` ${w.last_delivery.status_code}` : ''} ` +
                formatRelative(w.last_delivery.at)
              : p.paint('dim', 'none yet'),
          ]),
          p,
        ),
      );
    },
  );

  withClient(
    webhooks
      .command('create')
      .description('create an endpoint; prints its signing secret, shown this once')
      .argument(
        '<url>',
        'where run outcomes and agent budget events are posted (http:// or https://)',
        webhookUrlArg,
      )
      .option(
        '--events <list>',
        `comma list of ${WEBHOOK_EVENTS.join(', ')} (default run.failed,run.timed_out)`,
        eventsArg,
      )
      .option(
        '--agent <ids>',
        "only these agents' events (comma list; default every agent)",
        idListArg('--agent'),
      )
      .option('--description <text>', 'what it is for', textArg('--description', 500))
      .option('--disabled', 'create it paused'),
  ).action(
    async (
      url: string,
      flags: ClientFlags & {
        events?: WebhookEvent[];
        agent?: string;
        description?: string;
        disabled?: boolean;
      },
    ) => {
      const created = await clientFor(flags, io).request<CreatedWebhook>(
        'POST',
        '/api/v1/webhooks',
        undefined,
        {
          url,
          ...(flags.events ? { events: flags.events } : {}),
          ...(flags.agent ? { agent_ids: flags.agent.split(',') } : {}),
          ...(flags.description ? { description: flags.description } : {}),
          ...(flags.disabled ? { enabled: false } : {}),
        },
      );
      if (flags.json) return printJson(io, created);
      const w = printable(created);
      io.stdout.write(
        `created webhook ${w.id} → ${w.url}\n` +
          `  events: ${w.events.join(', ')}; agents: ${w.agent_ids?.join(', ') ?? 'all'}` +
          `${w.enabled ? '' : '; paused'}\n` +
          `  signing secret (shown this once): ${created.secret}\n`,
      );
    },
  );

  for (const [name, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const)
    withClient(
      webhooks
        .command(name)
        .description(
          enabled ? 'resume an endpoint; deliveries held meanwhile go out' : 'pause an endpoint',
        )
        .argument('<id>', 'webhook id', idArg('<id>')),
    ).action(async (id: string, flags: ClientFlags) => {
      const w = await clientFor(flags, io).request<WebhookEndpoint>('PATCH', path(id), undefined, {
        enabled,
      });
      if (flags.json) return printJson(io, w);
      io.stdout.write(`webhook ${printable(w.id)} ${enabled ? 'enabled' : 'paused'}\n`);
    });

  withClient(
    webhooks
      .command('delete')
      .description('delete an endpoint and its deliveries')
      .argument('<id>', 'webhook id', idArg('<id>')),
  ).action(async (id: string, flags: ClientFlags) => {
    await clientFor(flags, io).request('DELETE', path(id));
    if (flags.json) return printJson(io, { id, deleted: true });
    io.stdout.write(`deleted webhook ${id}\n`);
  });

  withClient(
    webhooks
      .command('test')
      .description('send a signed ping now and print how the endpoint answered (exit 1 unless 2xx)')
      .argument('<id>', 'webhook id', idArg('<id>')),
  ).action(async (id: string, flags: ClientFlags) => {
    const result = await clientFor(flags, io).request<WebhookTestResult>('POST', path(id, '/test'));
    if (flags.json) printJson(io, result);
    else {
      const p = palette();
      const said = result.ok
        ? p.paint('green', `answered ${result.status_code}`)
        : p.paint('red', printable(result.error ?? 'failed'));
      io.stdout.write(`ping ${result.delivery.id}: ${said} in ${result.duration_ms} ms\n`);
      if (result.response_body) io.stdout.write(`${printable(result.response_body)}\n`);
    }
    if (!result.ok) throw new CliError(`the endpoint did not take the ping`, 1);
  });

  withClient(
    webhooks
      .command('redeliver')
      .description('send a delivery again now (same id and body), with a whole retry schedule')
      .argument('<id>', 'webhook id', idArg('<id>'))
      .argument(
        '<delivery-id>',
        'delivery id (webhooks deliveries lists them)',
        idArg('<delivery-id>'),
      ),
  ).action(async (id: string, deliveryId: string, flags: ClientFlags) => {
    const d = await clientFor(flags, io).request<WebhookDelivery>(
      'POST',
      path(id, `/deliveries/${encodeURIComponent(deliveryId)}/retry`),
    );
    if (flags.json) return printJson(io, d);
    io.stdout.write(`delivery ${printable(d.id)} (${printable(d.event)}) is due again now\n`);
  });

  withClient(
    webhooks
      .command('deliveries')
      .description("an endpoint's recent deliveries, newest first")
      .argument('<id>', 'webhook id', idArg('<id>'))
      .option(
        '--status <status>',
        WEBHOOK_DELIVERY_STATUSES.join(', '),
        oneOf('--status', WEBHOOK_DELIVERY_STATUSES),
      )
      .option('--limit <n>', 'how many (1-200)', intArg('--limit', 1, 200), 20),
  ).action(
    async (id: string, flags: ClientFlags & { status?: WebhookDeliveryStatus; limit: number }) => {
      const list = await clientFor(flags, io).request<{ deliveries: WebhookDelivery[] }>(
        'GET',
        path(id, '/deliveries'),
        { limit: flags.limit, status: flags.status },
      );
      if (flags.json) return printJson(io, list);
      const shown = printable(list.deliveries);
      if (shown.length === 0) {
        io.stdout.write('no deliveries\n');
        return;
      }
      const p = palette();
      io.stdout.write(
        table(
          [
            { header: 'ID', whole: true },
            { header: 'EVENT' },
            { header: 'RUN', optional: 1 },
            { header: 'STATUS' },
            { header: 'ATTEMPTS', align: 'right' as const },
            { header: 'LAST ANSWER', optional: 2 },
            { header: 'WHEN' },
          ],
          shown.map((d) => [
            d.id,
            d.event,
            // an agent event (a budget) is about an agent, not a run
            d.run_id ?? (d.agent_id ? `agent ${d.agent_id}` : '-'),
            deliveryStatus(d.status, p),
            String(d.attempts),
            d.last_status_code !== null ? String(d.last_status_code) : (d.last_error ?? '-'),
            d.status === 'delivered'
              ? formatRelative(d.delivered_at)
              : d.status === 'pending' && d.next_attempt_at
                ? `next ${formatRelative(d.next_attempt_at)}`
                : formatRelative(d.created_at),
          ]),
          p,
        ),
      );
    },
  );
}
