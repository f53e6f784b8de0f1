import { Fragment, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  DEFAULT_WEBHOOK_EVENTS,
  ID_PATTERN,
  WEBHOOK_EVENTS,
  type CreatedWebhook,
  type WebhookDeliveryStatus,
  type WebhookEndpoint,
  type WebhookEvent,
  type WebhookTestResult,
} from '@runlog/core';
import { needsScope, useCan } from '../auth/useCan';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { toast } from '../../components/Toasts';
import { SecretOnce } from './SecretOnce';
import { errorMessage } from '../../lib/api';
import {
  createWebhook,
  deleteWebhook,
  patchWebhook,
  redeliverWebhook,
  testWebhook,
  webhookDeliveriesQuery,
  webhooksQuery,
} from './settings.queries';

const NEEDS_ADMIN = needsScope('admin');

const EVENT_LABELS: Record<WebhookEvent, string> = {
  'run.failed': 'Failed',
  'run.timed_out': 'Timed out',
  'run.cancelled': 'Cancelled',
  'run.succeeded': 'Succeeded',
  'agent.over_budget': 'Agent over budget',
  'agent.under_budget': 'Agent back under budget',
};

/** A delivery's status as the run statuses show theirs: delivered green, failed red. */
const DELIVERY_CLASS: Record<WebhookDeliveryStatus, string> = {
  delivered: 's-succeeded',
  failed: 's-failed',
  pending: 's-queued',
};

function DeliveryStatus({ status }: { status: WebhookDeliveryStatus }) {
  return (
    <span className={`status-badge ${DELIVERY_CLASS[status]}`} data-status={status}>
      {status}
    </span>
  );
}

/** What the URL field says is wrong with it, if anything. */
function urlError(url: string): string | undefined {
  const text = url.trim();
  if (text === '') return undefined;
  if (!URL.canParse(text))
    return 'Enter an absolute URL, such as https://hooks.example.com/runlog.';
  if (!/^https?:$/.test(new URL(text).protocol)) return 'Use an http:// or https:// URL.';
  return undefined;
}

/** Agent ids of a comma list, and the first that is not an id. */
function agentList(text: string): { ids: string[]; bad?: string } {
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { ids, bad: ids.find((id) => !ID_PATTERN.test(id)) };
}

function NewWebhookSecret({ created, onDone }: { created: CreatedWebhook; onDone: () => void }) {
  return (
    <SecretOnce
      value={created.secret}
      testId="new-webhook-secret"
      copied="Secret copied"
      onDone={onDone}
    >
      <strong>Copy this signing secret now.</strong> It is shown once; your endpoint checks each
      delivery&apos;s Runlog-Signature with it.
    </SecretOnce>
  );
}

/** The answer of a Send test, one line. */
function testSummary(r: WebhookTestResult): string {
  return r.ok
    ? `Answered ${r.status_code} in ${r.duration_ms} ms`
    : `Failed: ${r.error ?? 'no answer'} (${r.duration_ms} ms)`;
}

function Deliveries({ webhook }: { webhook: WebhookEndpoint }) {
  const deliveries = useQuery(webhookDeliveriesQuery(webhook.id));
  const client = useQueryClient();
  const resend = useMutation({
    mutationFn: (deliveryId: string) => redeliverWebhook(webhook.id, deliveryId),
    onSuccess: () => {
      toast(webhook.enabled ? 'Sending it again' : 'It goes out once the webhook is resumed');
      void client.invalidateQueries({ queryKey: ['webhooks'] });
    },
    onError: (err) => toast(`Resending failed: ${errorMessage(err)}`, 'error'),
  });
  if (deliveries.isPending) return <Loading rows={2} />;
  if (deliveries.isError)
    return <ErrorBox error={deliveries.error} onRetry={() => void deliveries.refetch()} />;
  if (deliveries.data.length === 0)
    return <p className="muted">No deliveries yet: runs that end as this endpoint asks go here.</p>;
  return (
    <table className="data-table webhook-deliveries" aria-label={`Deliveries to ${webhook.url}`}>
      <thead>
        <tr>
          <th scope="col">Event</th>
          <th scope="col">Run or agent</th>
          <th scope="col">Status</th>
          <th scope="col" className="num">
            Attempts
          </th>
          <th scope="col">Last answer</th>
          <th scope="col">When</th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {deliveries.data.map((d) => (
          <tr key={d.id}>
            <td className="mono" data-label="Event">
              {d.event}
            </td>
            <td className="mono" data-label="Run or agent">
              {d.run_id ? (
                <Link to={`/runs/${encodeURIComponent(d.run_id)}`} className="truncate">
                  {d.run_id}
                </Link>
              ) : d.agent_id ? (
                // an agent event (its budget) is about the agent
                <Link to={`/agents/${encodeURIComponent(d.agent_id)}`} className="truncate">
                  {d.agent_id}
                </Link>
              ) : (
                <span className="muted">—</span>
              )}
            </td>
            <td data-label="Status">
              <DeliveryStatus status={d.status} />
            </td>
            <td className="num" data-label="Attempts">
              {d.attempts}
            </td>
            <td className="webhook-answer" data-label="Last answer">
              {d.last_status_code !== null ? (
                <span className="mono">{d.last_status_code}</span>
              ) : null}
              {d.last_error ? (
                <span className="muted" title={d.last_error}>
                  {' '}
                  {d.last_status_code !== null
                    ? d.last_error.replace(/^HTTP \d+:? ?/, '')
                    : d.last_error}
                </span>
              ) : null}
            </td>
            <td data-label="When">
              {d.status === 'delivered' && d.delivered_at ? (
                <RelativeTime iso={d.delivered_at} />
              ) : d.status === 'pending' && d.next_attempt_at ? (
                <>
                  next <RelativeTime iso={d.next_attempt_at} />
                </>
              ) : (
                <RelativeTime iso={d.created_at} />
              )}
            </td>
            <td className="actions">
              {d.status === 'pending' ? null : (
                <button
                  type="button"
                  className="btn btn-small btn-ghost"
                  aria-label={`Resend ${d.event} delivery ${d.id}`}
                  aria-disabled={resend.isPending || undefined}
                  onClick={() => !resend.isPending && resend.mutate(d.id)}
                >
                  Resend
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Outgoing webhooks: endpoints the server posts run outcomes and agent budget events to, signed. Admin only (the
 * server posts to whatever URL it is given, from its own network).
 */
export function WebhooksSection() {
  const canAdmin = useCan('admin');
  const hooks = useQuery({ ...webhooksQuery(), enabled: canAdmin });
  const client = useQueryClient();
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<WebhookEvent[]>([...DEFAULT_WEBHOOK_EVENTS]);
  const [agents, setAgents] = useState('');
  const [description, setDescription] = useState('');
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [tested, setTested] = useState<Record<string, WebhookTestResult>>({});
  const createButton = useRef<HTMLButtonElement>(null);
  const refresh = () => void client.invalidateQueries({ queryKey: ['webhooks'] });

  const create = useMutation({
    mutationFn: () => {
      const ids = agentList(agents).ids;
      return createWebhook({
        url: url.trim(),
        events,
        ...(ids.length > 0 ? { agent_ids: ids } : {}),
        ...(description.trim() ? { description: description.trim() } : {}),
      });
    },
    onSuccess: (hook) => {
      setCreated(hook);
      setUrl('');
      setAgents('');
      setDescription('');
      setEvents([...DEFAULT_WEBHOOK_EVENTS]);
      refresh();
    },
    onError: (err) => toast(`Creating the webhook failed: ${errorMessage(err)}`, 'error'),
  });
  const toggle = useMutation({
    mutationFn: (w: WebhookEndpoint) => patchWebhook(w.id, { enabled: !w.enabled }),
    onSuccess: (w) => {
      toast(w.enabled ? 'Webhook resumed' : 'Webhook paused');
      refresh();
    },
    onError: (err) => toast(`Changing the webhook failed: ${errorMessage(err)}`, 'error'),
  });
  const remove = useMutation({
    mutationFn: (w: WebhookEndpoint) => deleteWebhook(w.id),
    onSuccess: (_, w) => {
      toast('Webhook deleted');
      setCreated((c) => (c?.id === w.id ? null : c));
      refresh();
    },
    onError: (err) => toast(`Deleting failed: ${errorMessage(err)}`, 'error'),
  });
  const test = useMutation({
    mutationFn: (w: WebhookEndpoint) => testWebhook(w.id),
    onSuccess: (result, w) => {
      setTested((t) => ({ ...t, [w.id]: result }));
      toast(testSummary(result), result.ok ? undefined : 'error');
      refresh();
    },
    onError: (err) => toast(`Sending the test failed: ${errorMessage(err)}`, 'error'),
  });

  const badUrl = urlError(url);
  const badAgent = agentList(agents).bad;
  const valid = url.trim() !== '' && !badUrl && !badAgent && events.length > 0;
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (valid && !create.isPending) create.mutate();
  };

  return (
    <section className="section card" aria-labelledby="webhooks-title">
      <h2 id="webhooks-title">Webhooks</h2>
      <p className="muted">
        Runlog posts a signed JSON event to these URLs when a run ends as they ask, or when an
        agent&apos;s spend over 24 hours reaches its budget and falls back under it, retrying for
        about a day until they answer 2xx. The server posts from its own network to any URL given
        here.
      </p>
      <form className="inline-form webhook-form" onSubmit={onSubmit}>
        <div className="field field-grow">
          <label htmlFor="webhook-url">Endpoint URL</label>
          <input
            id="webhook-url"
            type="url"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://hooks.example.com/runlog"
            disabled={!canAdmin}
            aria-invalid={badUrl ? true : undefined}
            aria-describedby={badUrl ? 'webhook-url-error' : undefined}
          />
          {badUrl ? (
            <p className="field-error" id="webhook-url-error">
              {badUrl}
            </p>
          ) : null}
        </div>
        <div className="field">
          <label htmlFor="webhook-agents">Agents</label>
          <input
            id="webhook-agents"
            value={agents}
            onChange={(e) => setAgents(e.target.value)}
            placeholder="all agents, or ids: a,b"
            disabled={!canAdmin}
            aria-invalid={badAgent ? true : undefined}
            aria-describedby={badAgent ? 'webhook-agents-error' : undefined}
          />
          {badAgent ? (
            <p className="field-error" id="webhook-agents-error">
              {`“${badAgent}” is not an agent id (letters, digits and . _ : -).`}
            </p>
          ) : null}
        </div>
        <div className="field">
          <label htmlFor="webhook-description">Description</label>
          <input
            id="webhook-description"
            value={description}
            onChange={(e) => setDescription(e.target.value)}
            placeholder="e.g. on-call pager"
            disabled={!canAdmin}
          />
        </div>
        <fieldset className="webhook-events" disabled={!canAdmin}>
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((event) => (
            <label key={event}>
              <input
                type="checkbox"
                checked={events.includes(event)}
                onChange={(e) =>
                  setEvents((all) =>
                    e.target.checked ? [...all, event] : all.filter((x) => x !== event),
                  )
                }
              />{' '}
              {EVENT_LABELS[event]}
            </label>
          ))}
          {events.length === 0 ? <span className="field-error">Pick at least one.</span> : null}
        </fieldset>
        <button
          ref={createButton}
          type="submit"
          className="btn btn-primary"
          disabled={!canAdmin || !valid}
          aria-disabled={create.isPending || undefined}
          title={canAdmin ? undefined : NEEDS_ADMIN}
        >
          Add webhook
        </button>
      </form>
      {created ? (
        <NewWebhookSecret
          created={created}
          onDone={() => {
            setCreated(null);
            createButton.current?.focus();
          }}
        />
      ) : null}
      {!canAdmin ? (
        <p className="scope-note">{NEEDS_ADMIN} to list, create or change webhooks.</p>
      ) : hooks.isPending ? (
        <Loading rows={2} />
      ) : hooks.isError ? (
        <ErrorBox error={hooks.error} onRetry={() => void hooks.refetch()} />
      ) : hooks.data.length === 0 ? (
        <Empty title="No webhooks" />
      ) : (
        <div className="table-wrap">
          <table className="data-table card-table webhooks-table">
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">Events</th>
                <th scope="col">Agents</th>
                <th scope="col">Enabled</th>
                <th scope="col">Last delivery</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {hooks.data.map((w) => (
                <Fragment key={w.id}>
                  <tr className={w.enabled ? undefined : 'paused'} data-webhook={w.id}>
                    <td className="webhook-url">
                      <span className="mono truncate" title={w.url}>
                        {w.url}
                      </span>
                      {w.description ? (
                        <span className="muted webhook-description">{w.description}</span>
                      ) : null}
                    </td>
                    <td data-label="Events">
                      <span className="cell-body">
                        {w.events.map((e) => (
                          <span key={e} className="tag">
                            {EVENT_LABELS[e]}
                          </span>
                        ))}
                      </span>
                    </td>
                    <td data-label="Agents">
                      <span className="cell-body">
                        {w.agent_ids ? (
                          w.agent_ids.map((a) => (
                            <span key={a} className="tag mono">
                              {a}
                            </span>
                          ))
                        ) : (
                          <span className="muted">all</span>
                        )}
                      </span>
                    </td>
                    <td data-label="Enabled">{w.enabled ? 'Yes' : 'Paused'}</td>
                    <td data-label="Last delivery">
                      <span className="cell-body">
                        {w.last_delivery ? (
                          <>
                            <DeliveryStatus status={w.last_delivery.status} />{' '}
                            {w.last_delivery.status_code !== null ? (
                              <span className="mono">{w.last_delivery.status_code} </span>
                            ) : null}
                            <RelativeTime iso={w.last_delivery.at} />
                          </>
                        ) : (
                          <span className="muted">none yet</span>
                        )}
                        {tested[w.id] ? (
                          <p
                            className={
                              tested[w.id]!.ok ? 'webhook-test' : 'webhook-test field-error'
                            }
                            role="status"
                          >
                            Test: {testSummary(tested[w.id]!)}
                          </p>
                        ) : null}
                      </span>
                    </td>
                    <td className="actions">
                      <button
                        type="button"
                        className="btn btn-small btn-ghost"
                        aria-label={`Send a test to ${w.url}`}
                        aria-disabled={test.isPending || undefined}
                        onClick={() => !test.isPending && test.mutate(w)}
                      >
                        Send test
                      </button>
                      <button
                        type="button"
                        className="btn btn-small btn-ghost"
                        aria-expanded={open === w.id}
                        aria-label={`Deliveries to ${w.url}`}
                        onClick={() => setOpen((o) => (o === w.id ? null : w.id))}
                      >
                        Deliveries
                      </button>
                      <button
                        type="button"
                        className="btn btn-small btn-ghost"
                        aria-label={`${w.enabled ? 'Pause' : 'Resume'} ${w.url}`}
                        aria-disabled={toggle.isPending || undefined}
                        onClick={() => !toggle.isPending && toggle.mutate(w)}
                      >
                        {w.enabled ? 'Pause' : 'Resume'}
                      </button>
                      <button
                        type="button"
                        className="btn btn-small btn-danger-ghost"
                        aria-label={`Delete webhook ${w.url}`}
                        aria-disabled={remove.isPending || undefined}
                        onClick={() => {
                          if (remove.isPending) return;
                          if (
                            confirm(
                              `Delete the webhook to ${w.url}? It stops getting events at once, and its pending deliveries are dropped.`,
                            )
                          )
                            remove.mutate(w);
                        }}
                      >
                        Delete
                      </button>
                    </td>
                  </tr>
                  {open === w.id ? (
                    <tr className="webhook-deliveries-row">
                      <td colSpan={6}>
                        <Deliveries webhook={w} />
                      </td>
                    </tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
