import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ApiKey, CreatedKey, KeyScope, ModelPrice } from '@runlog/core';
import { useDocumentTitle } from '../../app/page';
import { sessionQuery } from '../auth/auth.queries';
import { needsScope, useCan } from '../auth/useCan';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { RelativeTime } from '../../components/Time';
import { toast } from '../../components/Toasts';
import { SecretOnce } from './SecretOnce';
import { focusIfLost } from '../../components/focus';
import { errorMessage } from '../../lib/api';
import { parsePrice, priceError } from './priceInput';
import { WebhooksSection } from './WebhooksSection';
import {
  createKey,
  deletePrice,
  keysQuery,
  pricesQuery,
  putPrice,
  revokeKey,
  saveRetention,
  settingsQuery,
} from './settings.queries';

// the option shows the short name: a phone cuts a select's text at its edge, so what a scope
// allows is written out beneath it, where it can wrap
const SCOPES: Record<KeyScope, { label: string; allows: string }> = {
  read: { label: 'Read', allows: 'Query runs and stats.' },
  write: { label: 'Write', allows: 'Record runs, run workers, stop and retry.' },
  admin: { label: 'Admin', allows: 'Keys, settings and retention.' },
};

function NewKeySecret({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  return (
    <SecretOnce value={created.key} testId="new-key" copied="Key copied" onDone={onDone}>
      <strong>Copy this key now.</strong> It is shown once and cannot be recovered.
    </SecretOnce>
  );
}

function revokeQuestion(key: ApiKey, own: boolean): string {
  const name = key.name ?? key.prefix;
  return own
    ? `Revoke key ${name}? This session is signed in with it: you will be logged out at once and need another key to log back in.`
    : `Revoke key ${name}? Clients using it stop working at once.`;
}

// keys, retention and prices are changed with an admin key; a lesser one sees the controls
// disabled, with this as their reason
const NEEDS_ADMIN = needsScope('admin');

function KeysSection() {
  const canAdmin = useCan('admin');
  // listing keys needs admin too: a lesser key is not sent to be refused
  const keys = useQuery({ ...keysQuery(), enabled: canAdmin });
  const client = useQueryClient();
  const [scope, setScope] = useState<KeyScope>('write');
  const [name, setName] = useState('');
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const createButton = useRef<HTMLButtonElement>(null);
  // the key whose Revoke had the focus: its "revoked" takes it when the button goes
  const revoked = useRef<string | null>(null);
  const create = useMutation({
    mutationFn: () => createKey(scope, name.trim() || undefined),
    onSuccess: (key) => {
      setCreated(key);
      setName('');
      void client.invalidateQueries({ queryKey: ['keys'] });
    },
    onError: (err) => toast(`Creating the key failed: ${errorMessage(err)}`, 'error'),
  });
  const session = useQuery(sessionQuery());
  const ownKeyId = session.data?.key_id;
  const revoke = useMutation({
    mutationFn: revokeKey,
    onSuccess: (key) => {
      toast('Key revoked');
      // a revoked key's secret is of no use: stop offering it for copying
      setCreated((c) => (c?.id === key.id ? null : c));
      void client.invalidateQueries({ queryKey: ['keys'] });
    },
    onError: (err) => toast(`Revoking failed: ${errorMessage(err)}`, 'error'),
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (!create.isPending) create.mutate();
  };
  return (
    <section className="section card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <form className="inline-form" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="key-name">Name</label>
          <input
            id="key-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="e.g. ci-worker"
            disabled={!canAdmin}
          />
        </div>
        <div className="field">
          <label htmlFor="key-scope">Scope</label>
          <select
            id="key-scope"
            value={scope}
            aria-describedby="key-scope-allows"
            disabled={!canAdmin}
            onChange={(e) => setScope(e.target.value as KeyScope)}
          >
            {(Object.keys(SCOPES) as KeyScope[]).map((s) => (
              <option key={s} value={s}>
                {SCOPES[s].label}
              </option>
            ))}
          </select>
        </div>
        <button
          ref={createButton}
          type="submit"
          className="btn btn-primary"
          // busy, not disabled: a disabled button drops the keyboard focus to the page
          disabled={!canAdmin}
          aria-disabled={create.isPending || undefined}
          title={canAdmin ? undefined : NEEDS_ADMIN}
        >
          Create key
        </button>
        <p className="hint muted" id="key-scope-allows">
          {SCOPES[scope].allows}
        </p>
      </form>
      {created ? (
        <NewKeySecret
          created={created}
          onDone={() => {
            setCreated(null);
            // the panel goes: the keyboard goes on from the form above it
            createButton.current?.focus();
          }}
        />
      ) : null}
      {!canAdmin ? (
        <p className="scope-note">{NEEDS_ADMIN} to list, create or revoke keys.</p>
      ) : keys.isPending ? (
        <Loading rows={2} />
      ) : keys.isError ? (
        <ErrorBox error={keys.error} onRetry={() => void keys.refetch()} />
      ) : keys.data.length === 0 ? (
        <Empty title="No keys" />
      ) : (
        <div className="table-wrap">
          <table className="data-table keys-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Scope</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.map((k) => (
                <tr key={k.id} className={k.revoked_at ? 'revoked' : undefined}>
                  <td className="key-name">
                    {/* one long name widened the table until every Revoke was off screen */}
                    <span className="key-name-cell">
                      {k.name ? (
                        <span className="truncate" title={k.name}>
                          {k.name}
                        </span>
                      ) : (
                        <span className="muted">unnamed</span>
                      )}
                      {k.id === ownKeyId ? <span className="tag own-key">this session</span> : null}
                    </span>
                  </td>
                  <td className="mono" data-label="Key">
                    {k.prefix}…
                  </td>
                  <td data-label="Scope">
                    <span className={`scope scope-${k.scope}`}>{k.scope}</span>
                  </td>
                  <td data-label="Created">
                    <RelativeTime iso={k.created_at} />
                  </td>
                  <td data-label="Last used">
                    {k.last_used_at ? (
                      <RelativeTime iso={k.last_used_at} />
                    ) : (
                      <span className="muted">never</span>
                    )}
                  </td>
                  <td className="actions">
                    {k.revoked_at ? (
                      <span
                        className="muted"
                        tabIndex={-1}
                        ref={(el) => {
                          if (el && revoked.current === k.id) {
                            revoked.current = null;
                            focusIfLost(el);
                          }
                        }}
                      >
                        revoked
                      </span>
                    ) : (
                      <button
                        type="button"
                        className="btn btn-small btn-danger-ghost"
                        aria-label={`Revoke key ${k.name ?? k.prefix}`}
                        aria-disabled={revoke.isPending || undefined}
                        onClick={() => {
                          if (revoke.isPending) return;
                          if (confirm(revokeQuestion(k, k.id === ownKeyId))) {
                            revoked.current = k.id;
                            revoke.mutate(k.id);
                          }
                        }}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Lowering retention deletes runs at the next sweep (every 5 minutes): the user says so first. */
function confirmRetention(current: number, next: number): boolean {
  if (next >= current) return true;
  return confirm(
    `Keep runs for ${next} days instead of ${current}? Runs older than ${next} days and their steps will be deleted.`,
  );
}

function RetentionSection() {
  const canAdmin = useCan('admin');
  const settings = useQuery(settingsQuery());
  const client = useQueryClient();
  const [days, setDays] = useState('');
  useEffect(() => {
    if (settings.data) setDays(String(settings.data.retention_days));
  }, [settings.data]);
  const save = useMutation({
    mutationFn: (n: number) => saveRetention(n),
    onSuccess: (s) => {
      client.setQueryData(['settings'], s);
      toast(`Runs are kept ${s.retention_days} days`);
    },
    onError: (err) => toast(`Saving failed: ${errorMessage(err)}`, 'error'),
  });
  const n = Number(days);
  const valid = days.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= 3650;
  return (
    <section className="section card" aria-labelledby="ret-title">
      <h2 id="ret-title">Retention</h2>
      {settings.isPending ? (
        <Loading rows={1} />
      ) : settings.isError ? (
        <ErrorBox error={settings.error} onRetry={() => void settings.refetch()} />
      ) : (
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (valid && confirmRetention(settings.data.retention_days, n)) save.mutate(n);
          }}
        >
          <div className="field">
            <label htmlFor="ret-days">Keep runs for (days)</label>
            <input
              id="ret-days"
              type="number"
              min={1}
              max={3650}
              value={days}
              onChange={(e) => setDays(e.target.value)}
              aria-invalid={!valid}
              aria-describedby={valid ? undefined : 'ret-days-error'}
              disabled={!canAdmin}
            />
            {valid ? null : (
              <p className="field-error" id="ret-days-error">
                Enter a whole number of days from 1 to 3,650.
              </p>
            )}
          </div>
          <button
            type="submit"
            className="btn btn-primary"
            disabled={!canAdmin || !valid || save.isPending || n === settings.data.retention_days}
            title={canAdmin ? undefined : NEEDS_ADMIN}
          >
            Save
          </button>
          <p className="muted hint">
            Runs that ended earlier are deleted with their steps, checked every 5 minutes.
          </p>
        </form>
      )}
    </section>
  );
}

function PricesSection() {
  const canAdmin = useCan('admin');
  const prices = useQuery(pricesQuery());
  const client = useQueryClient();
  const [form, setForm] = useState({ model: '', input: '', output: '', cached: '' });
  const [filter, setFilter] = useState('');
  // Edit fills the form above the table: its first price takes the focus, which brings it into
  // view (on a phone the form is off the screen, and Edit seemed to do nothing)
  const inputPrice = useRef<HTMLInputElement>(null);
  const put = useMutation({
    mutationFn: () =>
      putPrice(form.model.trim(), {
        input_per_mtok: parsePrice(form.input)!,
        output_per_mtok: parsePrice(form.output)!,
        cached_input_per_mtok: form.cached.trim() === '' ? null : parsePrice(form.cached)!,
      }),
    onSuccess: (p) => {
      toast(`Price for ${p.model} saved`);
      setForm({ model: '', input: '', output: '', cached: '' });
      void client.invalidateQueries({ queryKey: ['prices'] });
    },
    onError: (err) => toast(`Saving the price failed: ${errorMessage(err)}`, 'error'),
  });
  const remove = useMutation({
    mutationFn: deletePrice,
    onSuccess: () => void client.invalidateQueries({ queryKey: ['prices'] }),
    onError: (err) => toast(`Removing failed: ${errorMessage(err)}`, 'error'),
  });
  const valid =
    form.model.trim() !== '' &&
    parsePrice(form.input) !== undefined &&
    parsePrice(form.output) !== undefined &&
    (form.cached.trim() === '' || parsePrice(form.cached) !== undefined);
  const overrides = (prices.data ?? []).filter((p) => p.source === 'project');
  const allBuiltin = (prices.data ?? []).filter((p) => p.source !== 'project');
  const builtin = allBuiltin.filter((p) =>
    p.model.toLowerCase().includes(filter.trim().toLowerCase()),
  );
  const field = (k: keyof typeof form, label: string, placeholder = '') => {
    // a price that cannot be saved says why beside it, not only by a disabled Save
    const error = k === 'model' ? undefined : priceError(form[k]);
    return (
      <div className="field">
        <label htmlFor={`price-${k}`}>{label}</label>
        <input
          id={`price-${k}`}
          ref={k === 'input' ? inputPrice : undefined}
          value={form[k]}
          inputMode={k === 'model' ? 'text' : 'decimal'}
          placeholder={placeholder}
          disabled={!canAdmin}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `price-${k}-error` : undefined}
          onChange={(e) => setForm((f) => ({ ...f, [k]: e.target.value }))}
        />
        {error ? (
          <p id={`price-${k}-error`} className="field-error">
            {error}
          </p>
        ) : null}
      </div>
    );
  };
  return (
    <section className="section card" aria-labelledby="prices-title">
      <h2 id="prices-title">Model prices</h2>
      <p className="muted">
        USD per million tokens. A project price overrides the built-in one for costs computed from
        now on.
      </p>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) put.mutate();
        }}
      >
        {field('model', 'Model', 'gpt-4o-mini')}
        {field('input', 'Input $/Mtok', '0.15')}
        {field('output', 'Output $/Mtok', '0.60')}
        {field('cached', 'Cached input $/Mtok', 'optional')}
        <button
          type="submit"
          className="btn btn-primary"
          disabled={!canAdmin || !valid || put.isPending}
          title={canAdmin ? undefined : NEEDS_ADMIN}
        >
          Save price
        </button>
      </form>
      {prices.isPending ? (
        <Loading rows={2} />
      ) : prices.isError ? (
        <ErrorBox error={prices.error} onRetry={() => void prices.refetch()} />
      ) : (
        <>
          <h3>Overrides</h3>
          {overrides.length === 0 ? (
            <p className="muted">No overrides: built-in prices apply.</p>
          ) : (
            <PriceTable
              prices={overrides}
              actions={(p) => (
                <>
                  <button
                    type="button"
                    className="btn btn-small btn-ghost"
                    disabled={!canAdmin}
                    title={canAdmin ? undefined : NEEDS_ADMIN}
                    onClick={() => {
                      setForm({
                        model: p.model,
                        input: String(p.input_per_mtok),
                        output: String(p.output_per_mtok),
                        cached:
                          p.cached_input_per_mtok != null ? String(p.cached_input_per_mtok) : '',
                      });
                      inputPrice.current?.focus();
                    }}
                    aria-label={`Edit price of ${p.model}`}
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className="btn btn-small btn-danger-ghost"
                    disabled={!canAdmin}
                    title={canAdmin ? undefined : NEEDS_ADMIN}
                    onClick={() => remove.mutate(p.model)}
                    aria-label={`Remove override of ${p.model}`}
                  >
                    Remove
                  </button>
                </>
              )}
            />
          )}
          <details className="builtin">
            <summary>
              {/* filtered, the count says how many of them the table shows */}
              Built-in prices (
              {builtin.length === allBuiltin.length
                ? allBuiltin.length
                : `${builtin.length} of ${allBuiltin.length}`}
              )
            </summary>
            <label className="sr-only" htmlFor="price-filter">
              Filter built-in prices
            </label>
            <input
              id="price-filter"
              type="search"
              placeholder="Filter models"
              value={filter}
              onChange={(e) => setFilter(e.target.value)}
            />
            <PriceTable prices={builtin} />
          </details>
        </>
      )}
    </section>
  );
}

/** API keys, webhooks, retention and model price overrides. */
export function SettingsPage() {
  const canAdmin = useCan('admin');
  useDocumentTitle('Settings');
  return (
    <div className="settings-page">
      <div className="page-head">
        <h1 tabIndex={-1}>Settings</h1>
      </div>
      {canAdmin ? null : (
        <p className="scope-note scope-note-page">
          {NEEDS_ADMIN} to change settings: this session&apos;s key can look but not change.
        </p>
      )}
      <KeysSection />
      <WebhooksSection />
      <RetentionSection />
      <PricesSection />
    </div>
  );
}

/**
 * Model prices per million tokens; `actions` adds a column of buttons per row, and with them
 * each row becomes a card on a phone (as the API keys' do): five columns put the buttons past
 * the right edge of a 375 px screen. Without them (the built-in prices, some 70 rows) a row
 * stays a line, its header and model names wrapping to fit a phone.
 */
function PriceTable({
  prices,
  actions,
}: {
  prices: ModelPrice[];
  actions?: (price: ModelPrice) => ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={actions ? 'data-table card-table' : 'data-table prices-table'}>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col" className="num">
              Input
            </th>
            <th scope="col" className="num">
              Output
            </th>
            <th scope="col" className="num">
              Cached input
            </th>
            {actions && (
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {prices.map((p) => (
            <tr key={p.model}>
              <td className="mono">{p.model}</td>
              <td className="num" data-label="Input">
                ${p.input_per_mtok}
              </td>
              <td className="num" data-label="Output">
                ${p.output_per_mtok}
              </td>
              <td className="num" data-label="Cached input">
                {p.cached_input_per_mtok != null ? `$${p.cached_input_per_mtok}` : '—'}
              </td>
              {actions && <td className="actions">{actions(p)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
