import { createHash } from 'node:crypto';
import {
  sql,
  LimitNode,
  OperationNodeTransformer,
  ValueNode,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import type pg from 'pg';
import type { Db } from './database.js';

/**
 * The comment that ends a statement to be named (`planOnce`). Only those are: a generic
 * plan is made without the values, and for a range of days (`day >= $2 and day < $3`)
 * PostgreSQL guessed a few rows and read the whole primary key for one agent's histogram,
 * 42 ms where a plan with the values took 6.5 ms.
 */
export const PLAN_ONCE = '/* runlog: plan once */';

/**
 * Asks PostgreSQL to parse and plan `query` once per connection and keep its plan: for a
 * hot query whose plan does not depend on its values (equalities; its limit is written as a
 * literal). A query with a range, a pattern or a cursor over a parameter stays planned with
 * its values.
 */
export function planOnce<
  Q extends {
    modifyEnd(modifier: ReturnType<typeof sql.raw>): Q;
    withPlugin(plugin: KyselyPlugin): Q;
  },
>(db: Db, query: Q): Q {
  return db.dialect === 'postgres'
    ? query.withPlugin(LIMIT_LITERALS).modifyEnd(sql.raw(PLAN_ONCE))
    : query;
}

/** At most this many statement texts get a name; the rest are parsed and planned each time. */
const MAX_NAMED = 200;
/** A text is named on its second use: a one-off query holds no slot. Bounds that count. */
const MAX_COUNTED = 2000;

/** A named statement whose table changed shape under it (a migration by another instance). */
const STALE_PLAN = '0A000';
/**
 * A named statement the connection's server never saw or already holds: a pooler in front
 * of PostgreSQL (PgBouncer in transaction mode) sends each statement to any server
 * connection, so names cannot be kept there.
 */
const POOLED = new Set(['26000', '42P05']);

/**
 * A `pg.Pool` for Kysely that sends each statement marked `planOnce` as a named prepared
 * statement, so PostgreSQL parses it once per connection and, as its generic plan is as
 * good as a fresh one, plans it once too.
 *
 * Kysely sends every query unnamed, which PostgreSQL parses and plans again on each call:
 * for the 20 latest runs of an agent among 1,000,000, parse and plan took 0.8 ms and the
 * query itself 0.2 ms (the planner weighs each of the runs table's indexes). A text is
 * named on its second use, so a one-off (an `in` list of another length) holds no name,
 * and `MAX_NAMED` bounds what each connection holds on the server. Never named: anything
 * inside a transaction, where a failed named statement could not be sent again.
 *
 * Outside a transaction a failure of the name itself is sent again unnamed: a plan gone
 * stale under a schema change (that text is not named again), or a pooler that cannot keep
 * names (no text is named again by this process).
 */
export class PreparingPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  /** Text → statement name, or `null` once that text must go unnamed. */
  readonly #names = new Map<string, string | null>();
  /** Texts used once, not yet named. */
  readonly #seen = new Set<string>();
  #naming = true;

  readonly #scope: string;

  /**
   * `scope`: the schema the pool's connections use. It is part of each name, so a statement
   * parsed for one schema is never taken for another's where server sessions are shared.
   */
  constructor(pool: pg.Pool, scope = '') {
    this.#pool = pool;
    this.#scope = scope;
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.#pool.connect();
    let wrapped = this.#clients.get(client);
    if (!wrapped) {
      wrapped = this.#wrap(client);
      this.#clients.set(client, wrapped);
    }
    return wrapped;
  }

  end(): Promise<void> {
    return this.#pool.end();
  }

  #nameOf(text: string): string | undefined {
    if (!this.#naming || !text.endsWith(PLAN_ONCE)) return undefined;
    const known = this.#names.get(text);
    if (known !== undefined) return known ?? undefined;
    if (this.#names.size >= MAX_NAMED) return undefined;
    if (!this.#seen.has(text)) {
      if (this.#seen.size >= MAX_COUNTED) this.#seen.clear();
      this.#seen.add(text);
      return undefined;
    }
    this.#seen.delete(text);
    const name = `rl_${createHash('sha1').update(this.#scope).update('\0').update(text).digest('base64url')}`;
    this.#names.set(text, name);
    return name;
  }

  #wrap(client: pg.PoolClient): PostgresPoolClient {
    let inTransaction = false;
    const query = async (text: string, parameters: ReadonlyArray<unknown>) => {
      const values = parameters as unknown[];
      if (values.length === 0) {
        if (/^\s*(begin|start\s+transaction)\b/i.test(text)) inTransaction = true;
        else if (/^\s*(commit|rollback|end|abort)\s*;?\s*$/i.test(text)) inTransaction = false;
      }
      const name = inTransaction ? undefined : this.#nameOf(text);
      if (name === undefined) return client.query(text, values);
      try {
        return await client.query({ name, text, values });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === STALE_PLAN) this.#names.set(text, null);
        else if (code !== undefined && POOLED.has(code)) this.#naming = false;
        else throw err;
        return client.query(text, values);
      }
    };
    return {
      query: ((
        textOrCursor: string | PostgresCursor<unknown>,
        parameters?: ReadonlyArray<unknown>,
      ) =>
        typeof textOrCursor === 'string'
          ? query(textOrCursor, parameters ?? [])
          : client.query(textOrCursor as never)) as unknown as PostgresPoolClient['query'],
      release: () => {
        // a connection handed back mid-transaction is rolled back by whoever takes it next
        inTransaction = false;
        client.release();
      },
    };
  }
}

/** Writes each `limit n` as a literal instead of a parameter. */
class LimitLiterals extends OperationNodeTransformer {
  protected override transformLimit(node: LimitNode): LimitNode {
    const limit = node.limit;
    if (ValueNode.is(limit) && Number.isSafeInteger(limit.value) && (limit.value as number) >= 0)
      return LimitNode.create(ValueNode.createImmediate(limit.value));
    return super.transformLimit(node);
  }
}

/**
 * Writes `limit` as a literal in a `planOnce` query. A named statement's generic plan is
 * planned for a parameter limit as if it kept a tenth of the rows: a page of 21 runs then
 * looked 100 times dearer generic than planned with its values, and PostgreSQL planned it
 * afresh on every call. With the number in the text the generic plan costs what it does, and
 * is kept. Limits are page sizes, a few values, so this adds few texts. Only those queries:
 * the transform rebuilds every node of a query, and the write path's bulk statements hold
 * thousands.
 */
class LimitLiteralsPlugin implements KyselyPlugin {
  readonly #transformer = new LimitLiterals();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node);
  }

  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}

const LIMIT_LITERALS = new LimitLiteralsPlugin();
