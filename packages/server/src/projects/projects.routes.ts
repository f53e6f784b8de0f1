import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import {
  BUILTIN_PRICES,
  CreateProjectBody,
  CreatedKey,
  Id,
  ModelPrice,
  PatchProjectBody,
  Project,
  PutPriceBody,
  newId,
  normalizeModelName,
  toIso,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import type { Database, ProjectRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';

function toProject(row: ProjectRow): Project {
  return {
    id: row.id,
    name: row.name,
    retention_days: row.retention_days,
    created_at: toIso(row.created_at),
  };
}

const ProjectParams = z.object({ project_id: Id });

/** The project's overrides that name `model` as prices match names (case, `.` or `-`). */
async function spellingsOf(
  db: Kysely<Database>,
  projectId: string,
  model: string,
): Promise<string[]> {
  const wanted = normalizeModelName(model);
  const rows = await db
    .selectFrom('model_prices')
    .select('model')
    .where('project_id', '=', projectId)
    .execute();
  return rows.map((r) => r.model).filter((m) => normalizeModelName(m) === wanted);
}
const ModelParams = z.object({ model: ModelPrice.shape.model });
const Settings = z.object({ project: Project, retention_days: z.number().int() });

/** `/projects`, `/settings` (retention) and `/prices` (model price overrides). */
export async function projectsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const k = ctx.db.kysely;

  async function loadProject(id: string): Promise<ProjectRow> {
    const row = await k.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw AppError.notFound('project', id);
    return row;
  }

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/projects',
    scope: 'admin',
    tag: 'projects',
    summary: "The caller's project (a key sees only its own)",
    response: z.object({ projects: z.array(Project) }),
    handler: async ({ auth }) => ({ projects: [toProject(await loadProject(auth.projectId))] }),
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/projects',
    scope: 'admin',
    tag: 'projects',
    summary: 'Create a project; answers with it and its first admin key (shown once)',
    body: CreateProjectBody,
    response: z.object({ project: Project, admin_key: CreatedKey }),
    status: 201,
    answers: { 409: 'A project with that id exists already' },
    handler: async ({ body }) => {
      const row: ProjectRow = {
        id: body.id ?? newId(),
        name: body.name,
        retention_days: body.retention_days ?? ctx.config.retentionDays,
        created_at: Date.now(),
      };
      const inserted = await k
        .insertInto('projects')
        .values(row)
        .onConflict((oc) => oc.doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) throw new AppError('conflict', `project ${row.id} already exists`);
      let adminKey;
      try {
        adminKey = await ctx.auth.createKey(row.id, 'admin', 'admin (project created)');
      } catch (err) {
        // a project no key can reach, whose id a second try would find taken: take it back
        await k
          .deleteFrom('projects')
          .where('id', '=', row.id)
          .execute()
          .catch(() => {});
        throw err;
      }
      return { project: toProject(row), admin_key: adminKey };
    },
  });

  defineRoute(app, {
    method: 'PATCH',
    url: '/api/v1/projects/:project_id',
    scope: 'admin',
    tag: 'projects',
    summary: "Rename the caller's project or change its retention",
    params: ProjectParams,
    body: PatchProjectBody,
    response: Project,
    handler: async ({ auth, params, body }) => {
      // another project's id answers 404, like every cross-project read
      if (params.project_id !== auth.projectId)
        throw AppError.notFound('project', params.project_id);
      if (Object.keys(body).length > 0) {
        await k.updateTable('projects').set(body).where('id', '=', auth.projectId).execute();
      }
      return toProject(await loadProject(auth.projectId));
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/settings',
    scope: 'read',
    tag: 'projects',
    summary: "The project's settings",
    response: Settings,
    handler: async ({ auth }) => {
      const project = toProject(await loadProject(auth.projectId));
      return { project, retention_days: project.retention_days };
    },
  });

  defineRoute(app, {
    method: 'PATCH',
    url: '/api/v1/settings',
    scope: 'admin',
    tag: 'projects',
    summary: "Change the project's settings (retention_days)",
    body: z.strictObject({ retention_days: z.number().int().min(1).max(3650) }),
    response: Settings,
    handler: async ({ auth, body }) => {
      await k
        .updateTable('projects')
        .set({ retention_days: body.retention_days })
        .where('id', '=', auth.projectId)
        .execute();
      const project = toProject(await loadProject(auth.projectId));
      return { project, retention_days: project.retention_days };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/prices',
    scope: 'read',
    tag: 'prices',
    summary:
      "Model prices (USD per million tokens): the project's overrides, then the built-in table",
    response: z.object({ prices: z.array(ModelPrice) }),
    handler: async ({ auth }) => {
      const rows = await k
        .selectFrom('model_prices')
        .selectAll()
        .where('project_id', '=', auth.projectId)
        .orderBy('model')
        .execute();
      const overrides: ModelPrice[] = rows.map((r) => ({
        model: r.model,
        input_per_mtok: r.input_per_mtok,
        output_per_mtok: r.output_per_mtok,
        cached_input_per_mtok: r.cached_input_per_mtok,
        source: 'project',
      }));
      const builtin: ModelPrice[] = Object.entries(BUILTIN_PRICES).map(([model, p]) => ({
        model,
        input_per_mtok: p.input,
        output_per_mtok: p.output,
        cached_input_per_mtok: p.cachedInput ?? null,
        source: 'builtin',
      }));
      return { prices: [...overrides, ...builtin] };
    },
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/api/v1/prices/:model',
    scope: 'admin',
    tag: 'prices',
    summary: "Set the project's price for a model (matched like the built-in table)",
    params: ModelParams,
    body: PutPriceBody,
    response: ModelPrice,
    handler: async ({ auth, params, body }) => {
      const row = {
        project_id: auth.projectId,
        model: params.model,
        input_per_mtok: body.input_per_mtok,
        output_per_mtok: body.output_per_mtok,
        cached_input_per_mtok: body.cached_input_per_mtok ?? null,
        updated_at: Date.now(),
      };
      await k.transaction().execute(async (trx) => {
        // the model's other spellings (`Zed-1.5` for `zed-1-5`) match the same steps: left
        // beside this one, a step would be priced by whichever the database listed last
        const others = (await spellingsOf(trx, auth.projectId, params.model)).filter(
          (m) => m !== params.model,
        );
        if (others.length > 0)
          await trx
            .deleteFrom('model_prices')
            .where('project_id', '=', auth.projectId)
            .where('model', 'in', others)
            .execute();
        await trx
          .insertInto('model_prices')
          .values(row)
          .onConflict((oc) =>
            oc.columns(['project_id', 'model']).doUpdateSet({
              input_per_mtok: row.input_per_mtok,
              output_per_mtok: row.output_per_mtok,
              cached_input_per_mtok: row.cached_input_per_mtok,
              updated_at: row.updated_at,
            }),
          )
          .execute();
      });
      ctx.prices.invalidate(auth.projectId);
      return {
        model: row.model,
        input_per_mtok: row.input_per_mtok,
        output_per_mtok: row.output_per_mtok,
        cached_input_per_mtok: row.cached_input_per_mtok,
        source: 'project' as const,
      };
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/prices/:model',
    scope: 'admin',
    tag: 'prices',
    summary: "Remove the project's override for a model",
    params: ModelParams,
    status: 204,
    handler: async ({ auth, params }) => {
      const spellings = await spellingsOf(k, auth.projectId, params.model);
      const res =
        spellings.length > 0
          ? await k
              .deleteFrom('model_prices')
              .where('project_id', '=', auth.projectId)
              .where('model', 'in', spellings)
              .executeTakeFirst()
          : undefined;
      if (Number(res?.numDeletedRows ?? 0) === 0)
        throw AppError.notFound('price override', params.model);
      ctx.prices.invalidate(auth.projectId);
      return undefined;
    },
  });
}
