import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { costUnknown, type Agent, type AgentSummary, type AgentUpsertBody } from '@runlog/core';
import { ApiError, errorMessage } from '../../lib/api';
import { toast } from '../../components/Toasts';
import { RelativeTime } from '../../components/Time';
import { formatCost, formatUsdLimit } from '../../lib/format';
import { needsScope, useCan } from '../auth/useCan';
import { agentsKey, applyAgentToSummaries, putAgent } from './agents.queries';
import {
  TIMEOUT_UNITS,
  settingsBody,
  settingsErrors,
  settingsForm,
  type AgentSettingsForm,
  type EditableAgent,
  type SettingsErrors,
  type SettingsField,
  type TimeoutUnit,
} from './agentSettings';

const LIMIT_HELP = 'When a run passes it, the run is ended as failed and its agent told to stop.';

/** The three limits per run, each an input of its own. */
const LIMIT_FIELDS = [
  { key: 'maxCost', suffix: 'cost', label: 'Max cost (US$)', inputMode: 'decimal' },
  {
    key: 'maxTokens',
    suffix: 'tokens',
    label: 'Max tokens (input + output)',
    inputMode: 'numeric',
  },
  { key: 'maxSteps', suffix: 'steps', label: 'Max steps', inputMode: 'numeric' },
] as const;

/** The concurrency caps, each a whole number or empty for none. */
const CAP_FIELDS = [
  {
    key: 'maxConcurrency',
    suffix: 'concurrency',
    label: 'Runs at once on workers',
    help: 'Over every worker together: the runs past it wait queued until one running ends. Empty: no cap.',
  },
  {
    key: 'maxConcurrencyPerThread',
    suffix: 'thread-concurrency',
    label: 'Runs of one thread at once',
    help: "1: a conversation's turns run one after another, in order; other threads go on. Empty: no cap.",
  },
] as const;

function localTimezone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

let zones: string[] | undefined;
/** The time zones this browser knows, for the time-zone input's suggestions. */
function timezones(): string[] {
  try {
    zones ??= ['UTC', ...Intl.supportedValuesOf('timeZone').filter((z) => z !== 'UTC')];
  } catch {
    zones = ['UTC'];
  }
  return zones;
}

/** A scheduled moment in the viewer's time: "Sun, Dec 6, 9:00 AM UTC". */
function formatSlot(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
  });
}

/**
 * What the toast says once saved: that a budget at or under what the last 24 hours' runs
 * cost (`spentUsd`) holds its queued runs back now, else the schedule's next run as the
 * server computed it.
 */
function savedText(agent: Agent, spentUsd: number): string {
  const saved = `Settings of ${agent.name} saved`;
  const budget = agent.max_cost_usd_24h;
  if (budget !== null && spentUsd >= budget && !agent.paused_at)
    return `${saved}; its runs of the last 24 hours cost ${formatCost(spentUsd)}, over its budget of ${formatUsdLimit(budget)}: its queued runs wait`;
  if (!agent.schedule) return saved;
  if (agent.schedule.paused) return `${saved}; the schedule is paused`;
  if (agent.paused_at) return `${saved}; the agent is paused: its schedule queues no run`;
  return agent.next_run_at
    ? `${saved}; next run ${formatSlot(agent.next_run_at)}`
    : `${saved}; the schedule has no run to come`;
}

/**
 * One labelled input with its help line and, when the save failed on it, its error; the
 * input gets its id, aria-invalid and aria-describedby from `children`.
 */
function Field({
  id,
  label,
  help,
  error,
  className,
  children,
}: {
  id: string;
  label: string;
  help?: ReactNode;
  error: string | undefined;
  className?: string;
  children: (input: {
    id: string;
    'aria-invalid': true | undefined;
    'aria-describedby': string | undefined;
  }) => ReactNode;
}) {
  const described = [help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean);
  return (
    <div className={`field${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({
        id,
        'aria-invalid': error ? true : undefined,
        'aria-describedby': described.length > 0 ? described.join(' ') : undefined,
      })}
      {error ? (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      ) : null}
      {help ? (
        <p id={`${id}-help`} className="field-help">
          {help}
        </p>
      ) : null}
    </div>
  );
}

/**
 * Settings, beside Run now: the agent's name, description, schedule, timeout, per-run
 * limits, budget over 24 hours, retries and concurrency in a dialog. It sends only what the user changed; the server's errors go beside
 * the inputs they name, and the dialog stays open until a save goes through.
 */
export function AgentSettingsButton({ agent }: { agent: AgentSummary }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const client = useQueryClient();
  const id = useId();
  const canWrite = useCan('write');
  // the agent as the dialog opened: what the inputs are compared with to know what changed
  const [initial, setInitial] = useState<EditableAgent & Pick<Agent, 'next_run_at' | 'paused_at'>>(
    agent,
  );
  const [form, setForm] = useState<AgentSettingsForm>(() => settingsForm(agent));
  const [errors, setErrors] = useState<SettingsErrors>({});
  const focusError = useRef(false);

  const mutation = useMutation({
    mutationFn: (body: AgentUpsertBody) => putAgent(agent.id, body),
    onSuccess: (saved) => {
      client.setQueryData<AgentSummary[]>(agentsKey, (list) =>
        list ? applyAgentToSummaries(list, saved) : list,
      );
      dialog.current?.close();
      toast(savedText(saved, agent.counts_24h.cost_usd));
    },
    onError: (err) => {
      focusError.current = true;
      setErrors(
        err instanceof ApiError && err.status === 400
          ? settingsErrors(err.message, err.details)
          : { form: errorMessage(err) },
      );
    },
  });

  // after a failed save, the keyboard goes to the first input with an error (not while typing)
  useEffect(() => {
    if (!focusError.current) return;
    focusError.current = false;
    const bad = dialog.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    (bad ?? dialog.current?.querySelector<HTMLElement>('.form-error'))?.focus();
  }, [errors]);

  const open = () => {
    setInitial(agent);
    setForm(settingsForm(agent, localTimezone()));
    setErrors({});
    mutation.reset();
    dialog.current?.showModal();
  };

  const set = <K extends keyof AgentSettingsForm>(
    key: K,
    value: AgentSettingsForm[K],
    clears: readonly SettingsField[] = [key as SettingsField],
  ) => {
    setForm((f) => ({ ...f, [key]: value }));
    setErrors((e) => {
      if (!e.form && !clears.some((c) => e[c])) return e;
      const rest = { ...e };
      for (const c of [...clears, 'form'] as const) delete rest[c];
      return rest;
    });
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const result = settingsBody(form, initial);
    if (!result.ok) {
      focusError.current = true;
      setErrors(result.errors);
      return;
    }
    if (Object.keys(result.body).length === 0) {
      dialog.current?.close();
      toast('No changes to save');
      return;
    }
    mutation.mutate(result.body);
  };

  const scheduleUnchanged =
    form.scheduled &&
    initial.schedule !== null &&
    form.cron.trim() === initial.schedule.cron &&
    form.timezone.trim() === initial.schedule.timezone;

  return (
    <>
      <button
        type="button"
        className="btn btn-small"
        disabled={!canWrite}
        title={canWrite ? undefined : `${needsScope('write')} to change an agent's settings`}
        onClick={open}
      >
        Settings
      </button>
      <dialog
        ref={dialog}
        className="dialog settings-dialog"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-intro`}
      >
        <form onSubmit={onSubmit} noValidate>
          <h2 id={`${id}-title`}>Settings of {agent.name}</h2>
          <p id={`${id}-intro`} className="muted">
            Agent <span className="mono">{agent.id}</span>. Only the settings you change are saved.
          </p>

          <div className="settings-grid">
            <Field id={`${id}-name`} label="Display name" error={errors.name}>
              {(aria) => (
                <input
                  {...aria}
                  value={form.name}
                  maxLength={200}
                  autoComplete="off"
                  onChange={(e) => set('name', e.target.value)}
                />
              )}
            </Field>
            <Field id={`${id}-description`} label="Description" error={errors.description}>
              {(aria) => (
                <textarea
                  {...aria}
                  rows={2}
                  value={form.description}
                  maxLength={5000}
                  placeholder="What this agent does (optional)"
                  onChange={(e) => set('description', e.target.value)}
                />
              )}
            </Field>
          </div>

          <fieldset className="settings-group">
            <legend>Schedule</legend>
            <div className="choices">
              <label className="choice">
                <input
                  type="radio"
                  name={`${id}-scheduled`}
                  checked={!form.scheduled}
                  onChange={() => set('scheduled', false, ['cron', 'timezone'])}
                />
                No schedule
              </label>
              <label className="choice">
                <input
                  type="radio"
                  name={`${id}-scheduled`}
                  checked={form.scheduled}
                  onChange={() => set('scheduled', true, ['cron', 'timezone'])}
                />
                Run on a schedule
              </label>
            </div>
            {form.scheduled ? (
              <>
                <div className="settings-row">
                  <Field
                    id={`${id}-cron`}
                    label="Cron expression"
                    className="field-cron"
                    error={errors.cron}
                  >
                    {(aria) => (
                      <input
                        {...aria}
                        className="mono"
                        value={form.cron}
                        placeholder="0 9 * * 1-5"
                        spellCheck={false}
                        autoComplete="off"
                        onChange={(e) => set('cron', e.target.value)}
                      />
                    )}
                  </Field>
                  <Field
                    id={`${id}-timezone`}
                    label="Time zone"
                    className="field-timezone"
                    error={errors.timezone}
                  >
                    {(aria) => (
                      <input
                        {...aria}
                        value={form.timezone}
                        list={`${id}-zones`}
                        spellCheck={false}
                        autoComplete="off"
                        onChange={(e) => set('timezone', e.target.value)}
                      />
                    )}
                  </Field>
                  <datalist id={`${id}-zones`}>
                    {timezones().map((z) => (
                      <option key={z} value={z} />
                    ))}
                  </datalist>
                </div>
                <p className="field-help">
                  Minute, hour, day of month, month, weekday: <code>0 9 * * 1-5</code> queues a run
                  at 9:00 on weekdays, <code>*/15 * * * *</code> every 15 minutes.
                </p>
                {scheduleUnchanged ? (
                  <p className="field-help" data-testid="settings-next-run">
                    {initial.schedule?.paused ? (
                      'This schedule is paused: it queues no run until resumed.'
                    ) : initial.paused_at ? (
                      'The agent is paused: its schedule queues no run until the agent is resumed.'
                    ) : initial.next_run_at ? (
                      <>
                        Next run <RelativeTime iso={initial.next_run_at} /> (
                        {formatSlot(initial.next_run_at)})
                      </>
                    ) : (
                      'This schedule has no run to come.'
                    )}
                  </p>
                ) : null}
              </>
            ) : (
              <p className="field-help">Runs are queued only by Run now, the API or the SDK.</p>
            )}
          </fieldset>

          <fieldset className="settings-group">
            <legend>Timeout</legend>
            <Field
              id={`${id}-timeout`}
              label="Time a run may take"
              error={errors.timeout}
              help="A run still queued or running after this long is ended as timed out. Empty: no timeout."
            >
              {(aria) => (
                <div className="input-unit">
                  <input
                    {...aria}
                    inputMode="decimal"
                    value={form.timeout}
                    placeholder="none"
                    autoComplete="off"
                    onChange={(e) => set('timeout', e.target.value)}
                  />
                  <select
                    aria-label="Timeout unit"
                    value={form.timeoutUnit}
                    onChange={(e) => set('timeoutUnit', e.target.value as TimeoutUnit, ['timeout'])}
                  >
                    {Object.entries(TIMEOUT_UNITS).map(([unit, u]) => (
                      <option key={unit} value={unit}>
                        {u.label}
                      </option>
                    ))}
                  </select>
                </div>
              )}
            </Field>
          </fieldset>

          <fieldset className="settings-group">
            <legend>Limits per run</legend>
            <p className="field-help settings-group-help">Empty: no limit.</p>
            <div className="settings-limits">
              {LIMIT_FIELDS.map(({ key, suffix, label, inputMode }) => (
                <Field
                  key={key}
                  id={`${id}-${suffix}`}
                  label={label}
                  error={errors[key]}
                  help={LIMIT_HELP}
                >
                  {(aria) => (
                    <input
                      {...aria}
                      inputMode={inputMode}
                      value={form[key]}
                      placeholder="no limit"
                      autoComplete="off"
                      onChange={(e) => set(key, e.target.value)}
                    />
                  )}
                </Field>
              ))}
            </div>
          </fieldset>

          <fieldset className="settings-group">
            <legend>Budget</legend>
            <div className="settings-limits">
              <Field
                id={`${id}-budget`}
                label="Budget per 24 hours (US$)"
                error={errors.maxCost24h}
                help={
                  <>
                    While the runs it started in the last 24 hours cost this much or more, its
                    queued runs wait and its schedule skips its slots; runs under way go on. Empty:
                    no budget.{' '}
                    <span data-testid="settings-spent-24h">
                      {costUnknown(agent.counts_24h)
                        ? 'Its runs of the last 24 hours used models with no known price.'
                        : `Its runs of the last 24 hours cost ${formatCost(agent.counts_24h.cost_usd)}.`}
                    </span>
                  </>
                }
              >
                {(aria) => (
                  <input
                    {...aria}
                    inputMode="decimal"
                    value={form.maxCost24h}
                    placeholder="no budget"
                    autoComplete="off"
                    onChange={(e) => set('maxCost24h', e.target.value)}
                  />
                )}
              </Field>
            </div>
          </fieldset>

          <fieldset className="settings-group">
            <legend>Retries</legend>
            <p className="field-help settings-group-help">
              A run a worker executed that fails or times out is queued again on its own, not one
              stopped or past a limit. Empty attempts: no automatic retry.
            </p>
            <div className="settings-limits">
              <Field
                id={`${id}-attempts`}
                label="Attempts in all"
                error={errors.maxAttempts}
                help="The first run included: 3 is up to two retries."
              >
                {(aria) => (
                  <input
                    {...aria}
                    inputMode="numeric"
                    value={form.maxAttempts}
                    placeholder="no retries"
                    autoComplete="off"
                    onChange={(e) => set('maxAttempts', e.target.value)}
                  />
                )}
              </Field>
              <Field
                id={`${id}-retry-delay`}
                label="First retry after (seconds)"
                error={errors.retryDelay}
                help="Before a worker may take it."
              >
                {(aria) => (
                  <input
                    {...aria}
                    inputMode="decimal"
                    value={form.retryDelay}
                    autoComplete="off"
                    disabled={form.maxAttempts.trim() === ''}
                    onChange={(e) => set('retryDelay', e.target.value)}
                  />
                )}
              </Field>
              <Field id={`${id}-backoff`} label="Each next retry" error={undefined}>
                {(aria) => (
                  <select
                    {...aria}
                    value={form.retryBackoff}
                    disabled={form.maxAttempts.trim() === ''}
                    onChange={(e) =>
                      set('retryBackoff', e.target.value as AgentSettingsForm['retryBackoff'])
                    }
                  >
                    <option value="exponential">waits twice as long</option>
                    <option value="fixed">waits as long</option>
                  </select>
                )}
              </Field>
            </div>
          </fieldset>

          <fieldset className="settings-group">
            <legend>Concurrency</legend>
            <div className="settings-limits">
              {CAP_FIELDS.map(({ key, suffix, label, help }) => (
                <Field
                  key={key}
                  id={`${id}-${suffix}`}
                  label={label}
                  error={errors[key]}
                  help={help}
                >
                  {(aria) => (
                    <input
                      {...aria}
                      inputMode="numeric"
                      value={form[key]}
                      placeholder="no cap"
                      autoComplete="off"
                      onChange={(e) => set(key, e.target.value)}
                    />
                  )}
                </Field>
              ))}
            </div>
          </fieldset>

          {errors.form ? (
            <p className="field-error form-error" role="alert" tabIndex={-1}>
              {errors.form}
            </p>
          ) : null}
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button
              type="submit"
              className="btn btn-primary"
              disabled={!canWrite || mutation.isPending}
            >
              {mutation.isPending ? 'Saving…' : 'Save'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}
