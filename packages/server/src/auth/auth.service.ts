import type { IncomingHttpHeaders } from 'node:http';
import { sql } from 'kysely';
import { newId, toIso, type ApiKey, type CreatedKey, type KeyScope } from '@runlog/core';
import type { Db } from '../db/database.js';
import { lockId } from '../db/dialect.js';
import type { ApiKeyRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import type { AuthContext } from '../http/route.js';
import { generateApiKey, generateSessionToken, hashSecret, keyPrefix } from './keys.js';

export const SESSION_COOKIE = 'runlog_session';

/**
 * Whether a request's `Origin` (absent for non-browser clients) is this server's own, as the
 * browser reached it (`Host`, or `X-Forwarded-Host` behind a proxy). A session cookie is only
 * honoured from the dashboard's own origin: SameSite=Strict does not stop a page served from
 * another port of the same host, and WebSockets are not bound by CORS at all.
 */
export function fromOwnOrigin(headers: {
  origin?: string | undefined;
  host?: string | undefined;
  'x-forwarded-host'?: string | string[] | undefined;
}): boolean {
  if (headers.origin === undefined) return true;
  let origin: string;
  try {
    origin = new URL(headers.origin).host.toLowerCase();
  } catch {
    return false;
  }
  const forwarded = headers['x-forwarded-host'];
  const hosts = [headers.host, ...(Array.isArray(forwarded) ? forwarded : [forwarded])]
    .flatMap((h) => (h ? h.split(',') : []))
    .map((h) => h.trim().toLowerCase());
  return hosts.includes(origin);
}
export const SESSION_TTL_MS = 30 * 24 * 3600 * 1000;
/** How many dashboard sessions one key keeps at most; a login past it ends the oldest. */
export const MAX_SESSIONS_PER_KEY = 100;
const CACHE_TTL_MS = 10_000;
const LAST_USED_EVERY_MS = 60_000;

export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    project_id: row.project_id,
    name: row.name,
    scope: row.scope,
    prefix: row.prefix,
    created_at: toIso(row.created_at),
    last_used_at: toIso(row.last_used_at),
    revoked_at: toIso(row.revoked_at),
  };
}

interface Cached {
  auth: AuthContext | null;
  expires: number;
}

/** The advisory lock first starts take turns on (PostgreSQL), in the schema in use. */
const BOOTSTRAP_LOCK = lockId(sql.lit('runlog/bootstrap'));

/** Keys, sessions and first-start setup. Secrets are stored only as SHA-256 hashes. */
export class AuthService {
  private readonly cache = new Map<string, Cached>();
  /**
   * Bumped whenever cached credentials are dropped (a revoke, a session ended, here or
   * elsewhere): a lookup that read the database before the drop does not cache what it read.
   */
  private generation = 0;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly revokeListeners = new Set<(origin: 'local' | 'remote') => void>();

  /** SQLite's count of commits by other connections (`runlog keys revoke`, another process). */
  private readonly dataVersion: (() => number) | undefined;
  private seenDataVersion = 0;

  constructor(private readonly db: Db) {
    if (db.sqlite) {
      const statement = db.sqlite.prepare('PRAGMA data_version').pluck();
      this.dataVersion = () => statement.get() as number;
      this.seenDataVersion = this.dataVersion();
    }
  }

  /**
   * On SQLite, another process (the CLI revoking a key) has no NOTIFY to tell us: when the
   * file changed under another connection, cached credentials are checked again.
   */
  private forgetIfChangedElsewhere(): void {
    if (!this.dataVersion) return;
    const version = this.dataVersion();
    if (version === this.seenDataVersion) return;
    this.seenDataVersion = version;
    if (this.cache.size > 0) this.forgetCached();
  }

  /**
   * Calls `listener` after a key is revoked or a session ends, here (`origin` 'local') or on
   * another instance (`forgetCached`, origin 'remote'), so holders of long-lived connections
   * can check their credentials again; returns the unsubscribe function.
   */
  onRevoke(listener: (origin: 'local' | 'remote') => void): () => void {
    this.revokeListeners.add(listener);
    return () => this.revokeListeners.delete(listener);
  }

  /**
   * Another instance revoked a key or ended a session: credentials cached here are checked
   * again on their next use instead of holding up to CACHE_TTL_MS.
   */
  forgetCached(): void {
    this.generation++;
    this.cache.clear();
    this.revoked('remote');
  }

  private revoked(origin: 'local' | 'remote' = 'local'): void {
    for (const listener of this.revokeListeners) listener(origin);
  }

  /**
   * On a database without any API key (a new one, or one an import filled): creates an
   * admin key (`adminKey` when given) for the `default` project, made if missing (or, when
   * an import brought only other projects, for the oldest of them), and returns the key.
   * With `adminKey` on a database that lacks it, adds it to the `default` project so
   * scripted setups keep working.
   */
  async bootstrap(opts: {
    retentionDays: number;
    adminKey?: string;
  }): Promise<{ created: boolean; key?: string; projectId?: string; newProject?: boolean }> {
    const k = this.db.kysely;
    // instances starting together on one new PostgreSQL database take turns here: one of
    // them makes the first key, the others find it
    const first = await k.transaction().execute(async (trx) => {
      if (this.db.dialect === 'postgres')
        await sql`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`.execute(trx);
      const anyKey = await trx.selectFrom('api_keys').select('id').limit(1).executeTakeFirst();
      if (anyKey) return undefined;
      const now = Date.now();
      const key = opts.adminKey ?? generateApiKey();
      const projects = await trx
        .selectFrom('projects')
        .select('id')
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const projectId = projects.some((p) => p.id === 'default')
        ? 'default'
        : (projects[0]?.id ?? 'default');
      await trx
        .insertInto('projects')
        .values({
          id: projectId,
          name: 'Default',
          retention_days: opts.retentionDays,
          created_at: now,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      await trx
        .insertInto('api_keys')
        .values({
          id: newId(),
          project_id: projectId,
          name: 'admin (first start)',
          scope: 'admin',
          prefix: keyPrefix(key),
          hash: hashSecret(key),
          created_at: now,
          last_used_at: null,
          revoked_at: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      return { created: true, key, projectId, newProject: projects.length === 0 };
    });
    if (first) return first;
    if (opts.adminKey) {
      const hash = hashSecret(opts.adminKey);
      const found = await k
        .selectFrom('api_keys')
        .select(['id', 'prefix'])
        .where('hash', '=', hash)
        .executeTakeFirst();
      // versions before listings showed a quarter of a short key stored its first 10
      // characters, and an upgrade keeps stored rows: the key is known here, so say less
      const prefix = keyPrefix(opts.adminKey);
      if (found && found.prefix !== prefix)
        await k.updateTable('api_keys').set({ prefix }).where('id', '=', found.id).execute();
      const project = await k
        .selectFrom('projects')
        .select('id')
        .where('id', '=', 'default')
        .executeTakeFirst();
      if (!found && project) {
        await k
          .insertInto('api_keys')
          .values({
            id: newId(),
            project_id: 'default',
            name: 'admin (RUNLOG_ADMIN_KEY)',
            scope: 'admin',
            prefix,
            hash,
            created_at: Date.now(),
            last_used_at: null,
            revoked_at: null,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
    }
    return { created: false };
  }

  /**
   * An `Authorization` header (`Bearer <key>`), else a session token, to the caller they
   * identify: for HTTP requests and WebSocket upgrades alike.
   */
  async authenticate(
    authorization: string | undefined,
    sessionToken: string | undefined,
  ): Promise<AuthContext | undefined> {
    if (authorization) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      return m?.[1] ? this.authenticateKey(m[1]) : undefined;
    }
    return sessionToken ? this.authenticateSession(sessionToken) : undefined;
  }

  /** The caller of an HTTP request: a bearer key, else the dashboard's session cookie. */
  authenticateRequest(request: {
    headers: IncomingHttpHeaders;
    cookies: Record<string, string | undefined>;
  }): Promise<AuthContext | undefined> {
    // a page of another origin may send a request with the cookie (a form, a `no-cors` fetch)
    // though it cannot read the answer: the cookie counts only from the dashboard's origin
    const session = fromOwnOrigin(request.headers) ? request.cookies[SESSION_COOKIE] : undefined;
    return this.authenticate(request.headers.authorization, session);
  }

  /** Resolves an API key to its project and scope; `undefined` for unknown or revoked keys. */
  async authenticateKey(key: string): Promise<AuthContext | undefined> {
    return this.lookup(`k:${hashSecret(key)}`, async (hash) => {
      const row = await this.db.kysely
        .selectFrom('api_keys')
        .selectAll()
        .where('hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return row ? { projectId: row.project_id, scope: row.scope, keyId: row.id } : null;
    });
  }

  /** Resolves a session token (the dashboard's cookie). */
  async authenticateSession(token: string): Promise<AuthContext | undefined> {
    return this.lookup(`s:${hashSecret(token)}`, async (hash) => {
      const row = await this.db.kysely
        .selectFrom('sessions')
        .innerJoin('api_keys', 'api_keys.id', 'sessions.key_id')
        .select([
          'sessions.project_id',
          'api_keys.scope',
          'api_keys.id as key_id',
          'sessions.expires_at',
        ])
        .where('sessions.id', '=', hash)
        .where('api_keys.revoked_at', 'is', null)
        .executeTakeFirst();
      if (!row || row.expires_at < Date.now()) return null;
      return { projectId: row.project_id, scope: row.scope, keyId: row.key_id };
    });
  }

  private async lookup(
    cacheKey: string,
    load: (hash: string) => Promise<AuthContext | null>,
  ): Promise<AuthContext | undefined> {
    const now = Date.now();
    this.forgetIfChangedElsewhere();
    const hit = this.cache.get(cacheKey);
    let auth: AuthContext | null;
    if (hit && hit.expires > now) {
      auth = hit.auth;
    } else {
      const generation = this.generation;
      auth = await load(cacheKey.slice(2));
      // a key revoked while this read was on its way (one round trip, on PostgreSQL) was read
      // as valid: this request began before the revoke and may pass, but it is not kept for
      // the next CACHE_TTL_MS
      if (generation === this.generation) {
        if (this.cache.size > 10_000) this.cache.clear();
        this.cache.set(cacheKey, { auth, expires: now + CACHE_TTL_MS });
      }
    }
    if (auth) this.touch(auth.keyId, now);
    return auth ?? undefined;
  }

  private touch(keyId: string, now: number): void {
    const last = this.lastUsedWritten.get(keyId) ?? 0;
    if (now - last < LAST_USED_EVERY_MS) return;
    // one entry per key ever used: bounded as the cache is, for servers that mint keys often
    if (this.lastUsedWritten.size > 10_000) this.lastUsedWritten.clear();
    this.lastUsedWritten.set(keyId, now);
    // best effort, off the request's path
    void this.db.kysely
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', keyId)
      .execute()
      .catch(() => {});
  }

  async createSession(auth: AuthContext): Promise<{ token: string; expiresAt: number }> {
    const token = generateSessionToken();
    const now = Date.now();
    const expiresAt = now + SESSION_TTL_MS;
    await this.db.kysely
      .insertInto('sessions')
      .values({
        id: hashSecret(token),
        project_id: auth.projectId,
        key_id: auth.keyId,
        created_at: now,
        expires_at: expiresAt,
      })
      .execute();
    await this.db.kysely.deleteFrom('sessions').where('expires_at', '<', now).execute();
    // a key logs in from a few browsers: past MAX_SESSIONS_PER_KEY, its oldest sessions end,
    // so logging in again and again cannot grow the table without bound
    const k = this.db.kysely;
    const ended = await k
      .deleteFrom('sessions')
      .where('key_id', '=', auth.keyId)
      .where(
        'id',
        'not in',
        k
          .selectFrom('sessions')
          .select('id')
          .where('key_id', '=', auth.keyId)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(MAX_SESSIONS_PER_KEY),
      )
      .returning('id')
      .execute();
    if (ended.length > 0) this.generation++;
    for (const { id } of ended) this.cache.delete(`s:${id}`);
    if (ended.length > 0) this.revoked();
    return { token, expiresAt };
  }

  async deleteSession(token: string): Promise<void> {
    const hash = hashSecret(token);
    await this.db.kysely.deleteFrom('sessions').where('id', '=', hash).execute();
    this.generation++;
    this.cache.delete(`s:${hash}`);
    this.revoked();
  }

  async createKey(projectId: string, scope: KeyScope, name?: string): Promise<CreatedKey> {
    const key = generateApiKey();
    const row: ApiKeyRow = {
      id: newId(),
      project_id: projectId,
      name: name ?? null,
      scope,
      prefix: keyPrefix(key),
      hash: hashSecret(key),
      created_at: Date.now(),
      last_used_at: null,
      revoked_at: null,
    };
    await this.db.kysely.insertInto('api_keys').values(row).execute();
    return { ...toApiKey(row), key };
  }

  async listKeys(projectId: string): Promise<ApiKey[]> {
    const rows = await this.db.kysely
      .selectFrom('api_keys')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map(toApiKey);
  }

  /**
   * Revokes a key of the project; `undefined` when the project has no such key. The project's
   * last active admin key is refused (409): nobody could manage its keys after it.
   */
  async revokeKey(projectId: string, keyId: string): Promise<ApiKey | undefined> {
    const now = Date.now();
    const row = await this.db.kysely.transaction().execute(async (trx) => {
      let admins = trx
        .selectFrom('api_keys')
        .select('id')
        .where('project_id', '=', projectId)
        .where('scope', '=', 'admin')
        .where('revoked_at', 'is', null);
      // two revokes at once must not each leave the other as the last admin
      if (this.db.dialect === 'postgres') admins = admins.forUpdate();
      const activeAdmins = await admins.execute();
      const key = await trx
        .selectFrom('api_keys')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('id', '=', keyId)
        .executeTakeFirst();
      if (!key || key.revoked_at !== null) return key;
      if (key.scope === 'admin' && activeAdmins.length <= 1) {
        throw new AppError(
          'conflict',
          `key ${keyId} is the project's last admin key: create another admin key before revoking it`,
        );
      }
      await trx.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', key.id).execute();
      // its sessions end with it, now rather than when they expire (up to 30 days on)
      await trx.deleteFrom('sessions').where('key_id', '=', key.id).execute();
      return { ...key, revoked_at: now };
    });
    // sessions opened with the key end with it
    this.generation++;
    this.cache.clear();
    this.lastUsedWritten.delete(keyId);
    this.revoked();
    return row ? toApiKey(row) : undefined;
  }
}
