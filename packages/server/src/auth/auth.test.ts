import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createTestApp,
  describeEachDb,
  freshDatabase,
  json,
  type TestApp,
} from '../../test/harness.js';
import { openDatabase } from '../db/database.js';
import { migrateToLatest } from '../db/migrate.js';
import { ServerConfig } from '../config.js';
import { AuthService, fromOwnOrigin } from './auth.service.js';

it('takes an Origin as the server own when it names the Host or the forwarded host', () => {
  expect(fromOwnOrigin({ host: '127.0.0.1:4680' })).toBe(true);
  expect(fromOwnOrigin({ origin: 'http://127.0.0.1:4680', host: '127.0.0.1:4680' })).toBe(true);
  expect(fromOwnOrigin({ origin: 'http://127.0.0.1:3000', host: '127.0.0.1:4680' })).toBe(false);
  expect(
    fromOwnOrigin({
      origin: 'https://runlog.example.com',
      host: '10.0.0.5:4680',
      'x-forwarded-host': 'runlog.example.com',
    }),
  ).toBe(true);
  expect(fromOwnOrigin({ origin: 'null', host: '127.0.0.1:4680' })).toBe(false);
});

describeEachDb('the dashboard session cookie', (dialect) => {
  let t: TestApp;
  let cookie: string;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const login = await t.request('POST', '/api/v1/session', { key: t.adminKey }, null);
    cookie = String(login.headers['set-cookie']).split(';')[0]!;
  });
  afterAll(async () => {
    await t.close();
  });

  const withCookie = (method: 'GET' | 'POST', url: string, origin?: string) =>
    t.app.inject({
      method,
      url,
      headers: { cookie, host: '127.0.0.1:4680', ...(origin ? { origin } : {}) },
    });

  it('is HttpOnly and SameSite=Strict, and Secure when TLS ends at a proxy in front', async () => {
    const login = (headers: Record<string, string>) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        headers: { 'content-type': 'application/json', ...headers },
        payload: JSON.stringify({ key: t.adminKey }),
      });
    const plain = String((await login({})).headers['set-cookie']);
    expect(plain).toMatch(/HttpOnly/);
    expect(plain).toMatch(/SameSite=Strict/);
    expect(plain).not.toMatch(/Secure/);
    const proxied = String((await login({ 'x-forwarded-proto': 'https' })).headers['set-cookie']);
    expect(proxied).toMatch(/; Secure/);
    // Log out clears it with the attributes it was set with
    const cleared = String(
      (await t.app.inject({ method: 'DELETE', url: '/api/v1/session' })).headers['set-cookie'],
    );
    expect(cleared).toMatch(/^runlog_session=;/);
    expect(cleared).toMatch(/HttpOnly/);
    expect(cleared).toMatch(/SameSite=Strict/);
  });

  it('works from the dashboard origin and not from a page of another origin', async () => {
    const queued = json<{ id: string }>(await t.request('POST', '/api/v1/agents/csrf/runs', {}));
    const foreign = await withCookie(
      'POST',
      `/api/v1/runs/${queued.id}/cancel`,
      'http://127.0.0.1:3000',
    );
    expect(foreign.statusCode).toBe(401);
    expect(
      json<{ status: string }>(await t.request('GET', `/api/v1/runs/${queued.id}`)).status,
    ).toBe('queued');
    const own = await withCookie(
      'POST',
      `/api/v1/runs/${queued.id}/cancel`,
      'http://127.0.0.1:4680',
    );
    expect(own.statusCode).toBe(200);
    expect(json<{ status: string }>(own).status).toBe('cancelled');
    // same-origin reads send no Origin at all; the session says which key it stands for
    const session = await withCookie('GET', '/api/v1/session');
    expect(session.statusCode).toBe(200);
    const keys = json<{ keys: { id: string; scope: string }[] }>(
      await t.request('GET', '/api/v1/keys'),
    ).keys;
    expect(json<{ key_id: string }>(session).key_id).toBe(
      keys.find((k) => k.scope === 'admin')!.id,
    );
  });

  it('refuses a request naming another project than its session or key is for, and writes nothing', async () => {
    // the browser's one cookie is now project other's (a login in another tab); a tab still
    // showing project default stops its run `shared`, an id the other project has too
    const created = json<{ admin_key: { key: string } }>(
      await t.request('POST', '/api/v1/projects', { id: 'other-tab', name: 'Other' }),
    );
    const otherKey = created.admin_key.key;
    for (const key of [t.adminKey, otherKey])
      expect(
        (await t.request('POST', '/api/v1/agents/tabs/runs', { id: 'shared' }, key)).statusCode,
      ).toBe(202);
    const login = await t.request('POST', '/api/v1/session', { key: otherKey }, null);
    const otherCookie = String(login.headers['set-cookie']).split(';')[0]!;
    const asTab = (
      project: string,
      url = '/api/v1/runs/shared/cancel',
      method: 'POST' | 'GET' = 'POST',
    ) =>
      t.app.inject({
        method,
        url,
        headers: { cookie: otherCookie, host: '127.0.0.1:4680', 'x-runlog-project': project },
      });
    const refused = await asTab('default');
    expect(refused.statusCode).toBe(409);
    expect(
      json<{ error: { code: string; details: { field: string }[] } }>(refused).error,
    ).toMatchObject({
      code: 'conflict',
      details: [{ field: 'headers.x-runlog-project' }],
    });
    expect((await asTab('default', '/api/v1/session', 'GET')).statusCode).toBe(409);
    // the header sent twice, as a proxy that adds its own may: Node joins the two with ", "
    const twice = (project: string) =>
      t.app.inject({
        method: 'GET',
        url: '/api/v1/session',
        headers: { cookie: otherCookie, host: '127.0.0.1:4680', 'x-runlog-project': project },
      });
    expect((await twice('other-tab, other-tab')).statusCode).toBe(200);
    const mixed = await twice('other-tab, default');
    expect(mixed.statusCode).toBe(409);
    expect(json<{ error: { message: string } }>(mixed).error.message).toContain(
      'is for project other-tab, not default',
    );
    // a key names its project the same way
    const keyed = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/runs/shared',
      headers: { authorization: `Bearer ${otherKey}`, 'x-runlog-project': 'default' },
    });
    expect(keyed.statusCode).toBe(409);
    const shared = json<{ status: string }>(
      await t.request('GET', '/api/v1/runs/shared', undefined, otherKey),
    );
    expect(shared.status).toBe('queued');
    // naming its own project, the request goes through
    const own = await asTab('other-tab');
    expect(own.statusCode).toBe(200);
    expect(json<{ status: string }>(own).status).toBe('cancelled');
    expect(json<{ status: string }>(await t.request('GET', '/api/v1/runs/shared')).status).toBe(
      'queued',
    );
  });

  it('takes a Stop or a Retry sent with a JSON content type and no body', async () => {
    const queued = json<{ id: string }>(await t.request('POST', '/api/v1/agents/empty/runs', {}));
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/v1/runs/${queued.id}/cancel`,
      headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
      payload: '',
    });
    expect(res.statusCode).toBe(200);
    const ingest = await t.app.inject({
      method: 'POST',
      url: '/api/v1/ingest',
      headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
      payload: '',
    });
    expect(ingest.statusCode).toBe(400);
    expect(json<{ error: { message: string } }>(ingest).error.message).toMatch(/^body/);
  });

  it("refuses to revoke the project's last admin key, and revokes an admin key that has a successor", async () => {
    const keys = json<{ keys: { id: string; scope: string; revoked_at: string | null }[] }>(
      await t.request('GET', '/api/v1/keys'),
    ).keys;
    const first = keys.find((k) => k.scope === 'admin' && k.revoked_at === null)!;
    const refused = await t.request('DELETE', `/api/v1/keys/${first.id}`);
    expect(refused.statusCode).toBe(409);
    expect(json<{ error: { code: string } }>(refused).error.code).toBe('conflict');
    expect((await t.request('GET', '/api/v1/keys')).statusCode).toBe(200);

    const second = json<{ id: string; key: string }>(
      await t.request('POST', '/api/v1/keys', { scope: 'admin', name: 'successor' }),
    );
    expect(
      (await t.request('DELETE', `/api/v1/keys/${first.id}`, undefined, second.key)).statusCode,
    ).toBe(200);
    expect(
      (await t.request('DELETE', `/api/v1/keys/${second.id}`, undefined, second.key)).statusCode,
    ).toBe(409);
  });
});

describeEachDb('the first start', (dialect) => {
  it('makes one admin key when instances start together on a new database', async () => {
    // several instances share a PostgreSQL database; a SQLite file has one server
    if (dialect !== 'postgres') return;
    const database = freshDatabase(dialect);
    const instances = await Promise.all([0, 1, 2].map(() => openDatabase(database.url)));
    try {
      await migrateToLatest(instances[0]!);
      const starts = await Promise.all(
        instances.map((db) => new AuthService(db).bootstrap({ retentionDays: 30 })),
      );
      expect(starts.filter((s) => s.created)).toHaveLength(1);
      const keys = await instances[0]!.kysely.selectFrom('api_keys').select('id').execute();
      expect(keys).toHaveLength(1);
    } finally {
      for (const db of instances) await db.close();
      await database.drop();
    }
  });

  it('takes RUNLOG_ADMIN_KEY as a key every client can send, or refuses it at start', async () => {
    // read from a file, it ends with a newline: the key is what comes before
    const key = 'rl_scripted_key_from_a_file_0123456789';
    const t = await createTestApp(dialect, { adminKey: `${key}\n` });
    try {
      expect((await t.request('GET', '/api/v1/session', undefined, key)).statusCode).toBe(200);
      expect((await t.request('POST', '/api/v1/session', { key }, null)).statusCode).toBe(200);
      // listings show a quarter of a chosen key at most: 9 of these 38 characters
      const { keys } = json<{ keys: { name: string; prefix: string }[] }>(
        await t.request('GET', '/api/v1/keys', undefined, key),
      );
      expect(keys.map((k) => k.prefix)).toEqual(['rl_script']);
    } finally {
      await t.close();
    }
    // one with a space inside logged in to the dashboard, but no `Bearer` header carries it
    const spaced = ServerConfig.safeParse({
      db: ':memory:',
      port: 0,
      host: '127.0.0.1',
      retentionDays: 30,
      adminKey: 'correct horse battery staple',
    });
    expect(spaced.error?.issues).toMatchObject([
      { path: ['adminKey'], message: 'must be printable ASCII without spaces' },
    ]);
  });

  it('shows at most a quarter of a short chosen key in listings, and 10 characters of a made one', async () => {
    const key = 'short-admin-key!';
    const t = await createTestApp(dialect, { adminKey: key });
    try {
      const made = json<{ key: string }>(
        await t.request('POST', '/api/v1/keys', { name: 'made', scope: 'read' }, key),
      ).key;
      const { keys } = json<{ keys: { name: string; prefix: string }[] }>(
        await t.request('GET', '/api/v1/keys', undefined, key),
      );
      expect(keys.find((k) => k.name !== 'made')?.prefix).toBe('shor');
      expect(keys.find((k) => k.name === 'made')?.prefix).toBe(made.slice(0, 10));
    } finally {
      await t.close();
    }
  });

  it('shortens the listed part of a chosen key an older version stored, on the next start with it', async () => {
    const key = 'short-admin-key!';
    const t = await createTestApp(dialect, { adminKey: key });
    try {
      // versions before the quarter rule stored its first 10 characters, and an upgrade kept them
      await t.ctx.db.kysely
        .updateTable('api_keys')
        .set({ prefix: key.slice(0, 10) })
        .execute();
      await t.ctx.auth.bootstrap({ retentionDays: 30, adminKey: key });
      const { keys } = json<{ keys: { prefix: string }[] }>(
        await t.request('GET', '/api/v1/keys', undefined, key),
      );
      // before: 'short-admi', 10 of the key's 16 characters
      expect(keys.map((k) => k.prefix)).toEqual(['shor']);
    } finally {
      await t.close();
    }
  });

  it('adds a RUNLOG_ADMIN_KEY not stored yet to a database that has keys; a revoked one stays revoked', async () => {
    const t = await createTestApp(dialect);
    try {
      const later = 'rl_admin_set_later_0123456789';
      // a later start with a key of its own: the way back in after losing the printed key
      await t.ctx.auth.bootstrap({ retentionDays: 30, adminKey: later });
      const listed = await t.request('GET', '/api/v1/keys', undefined, later);
      expect(listed.statusCode).toBe(200);
      const added = json<{ keys: { id: string; name: string; scope: string }[] }>(listed).keys.find(
        (k) => k.name === 'admin (RUNLOG_ADMIN_KEY)',
      );
      expect(added).toMatchObject({ scope: 'admin' });
      expect(
        (await t.request('DELETE', `/api/v1/keys/${added!.id}`, undefined, t.adminKey)).statusCode,
      ).toBe(200);
      // started again with it: revoked it stays
      await t.ctx.auth.bootstrap({ retentionDays: 30, adminKey: later });
      expect((await t.request('GET', '/api/v1/keys', undefined, later)).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });
});

describeEachDb('a login in a browser that has a session', (dialect) => {
  it('ends that session: its cookie is replaced and it works nowhere else', async () => {
    const t = await createTestApp(dialect);
    try {
      const login = async (cookie?: string) =>
        String(
          (
            await t.app.inject({
              method: 'POST',
              url: '/api/v1/session',
              headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
              payload: JSON.stringify({ key: t.adminKey }),
            })
          ).headers['set-cookie'],
        ).split(';')[0]!;
      const asCookie = async (cookie: string) =>
        (await t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } }))
          .statusCode;
      const first = await login();
      const second = await login(first);
      expect(await asCookie(second)).toBe(200);
      expect(await asCookie(first)).toBe(401);
      // a cookie that names no session is no obstacle
      expect(await asCookie(await login('runlog_session=forged'))).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describeEachDb('sessions of one key', (dialect) => {
  it('keep the newest 100: logging in again and again ends the oldest', async () => {
    const t = await createTestApp(dialect);
    try {
      const login = async () => {
        const res = await t.request('POST', '/api/v1/session', { key: t.adminKey }, null);
        return String(res.headers['set-cookie']).split(';')[0]!;
      };
      const first = await login();
      const asCookie = (cookie: string) =>
        t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } });
      expect((await asCookie(first)).statusCode).toBe(200);
      // the oldest by its time: sessions made in one millisecond end in no set order
      await new Promise((r) => setTimeout(r, 5));
      let last = first;
      for (let i = 0; i < 100; i++) last = await login();
      const count = await t.ctx.db.kysely
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(count.n)).toBe(100);
      expect((await asCookie(first)).statusCode).toBe(401);
      expect((await asCookie(last)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describeEachDb('a revoked key', (dialect) => {
  it('ends the sessions opened with it, leaving no row behind', async () => {
    const t = await createTestApp(dialect);
    try {
      const { key, id } = await t.ctx.auth.createKey('default', 'read', 'leaving');
      const kept = await t.ctx.auth.createKey('default', 'read', 'staying');
      for (const k of [key, key, kept.key])
        expect((await t.request('POST', '/api/v1/session', { key: k }, null)).statusCode).toBe(200);
      const sessionsOf = async (keyId: string) =>
        (
          await t.ctx.db.kysely
            .selectFrom('sessions')
            .select('id')
            .where('key_id', '=', keyId)
            .execute()
        ).length;
      expect(await sessionsOf(id)).toBe(2);
      expect((await t.request('DELETE', `/api/v1/keys/${id}`)).statusCode).toBe(200);
      // before: the two rows stayed until they expired, 30 days on
      expect(await sessionsOf(id)).toBe(0);
      expect(await sessionsOf(kept.id)).toBe(1);
    } finally {
      await t.close();
    }
  });
});

describeEachDb('cached credentials', (dialect) => {
  it('never keep a key read as valid while it was being revoked', async () => {
    // SQLite's one connection serves the read and the revoke in turn: no read is in flight
    if (dialect !== 'postgres') return;
    const t = await createTestApp(dialect);
    try {
      const { key, id } = await t.ctx.auth.createKey('default', 'write', 'racer');
      // the key's lookup is held after its read until the revoke has committed, as one round
      // trip to PostgreSQL may be
      let readDone: () => void = () => {};
      const read = new Promise<void>((resolve) => (readDone = resolve));
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = false;
      const gate: KyselyPlugin = {
        transformQuery: (args) => args.node,
        transformResult: async (args) => {
          if (!held && args.result.rows.some((r) => (r as { name?: unknown }).name === 'racer')) {
            held = true;
            readDone();
            await released;
          }
          return args.result;
        },
      };
      const auth = new AuthService({ ...t.ctx.db, kysely: t.ctx.db.kysely.withPlugin(gate) });
      const racing = auth.authenticateKey(key);
      await read;
      await auth.revokeKey('default', id);
      release();
      // the lookup began before the revoke: it may pass, as a request in flight does
      expect(await racing).toBeDefined();
      // but the next use is checked again: before, the key passed for 10 s more
      expect(await auth.authenticateKey(key)).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});
