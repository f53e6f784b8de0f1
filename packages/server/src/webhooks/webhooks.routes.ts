import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  CreateWebhookBody,
  CreatedWebhook,
  Id,
  PatchWebhookBody,
  WEBHOOK_DELIVERY_STATUSES,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookTestResult,
} from '@runlog/core';
import type { AppContext } from '../context.js';
import { AppError } from '../http/errors.js';
import { defineRoute } from '../http/route.js';

const WebhookParams = z.object({ webhook_id: Id });
const DeliveryParams = z.object({ webhook_id: Id, delivery_id: Id });
const DeliveriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  status: z.enum(WEBHOOK_DELIVERY_STATUSES).optional(),
});

/**
 * `/webhooks`: a project's outgoing webhook endpoints (admin). The server posts to any URL an
 * admin gives it, from its own network: that is why only admins manage them.
 */
export async function webhooksRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const found = async (projectId: string, id: string) => {
    const endpoint = await ctx.webhooks.get(projectId, id);
    if (!endpoint) throw AppError.notFound('webhook', id);
    return endpoint;
  };

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/webhooks',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      'Create a webhook endpoint: run outcomes (default run.failed, run.timed_out) are posted to its URL, signed; the secret is in this answer only',
    body: CreateWebhookBody,
    response: CreatedWebhook,
    status: 201,
    handler: ({ auth, body }) => ctx.webhooks.create(auth.projectId, body),
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/webhooks',
    scope: 'admin',
    tag: 'webhooks',
    summary: "The project's webhook endpoints (never their secrets), each with its latest delivery",
    response: z.object({ webhooks: z.array(WebhookEndpoint) }),
    handler: async ({ auth }) => ({ webhooks: await ctx.webhooks.list(auth.projectId) }),
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/webhooks/:webhook_id',
    scope: 'admin',
    tag: 'webhooks',
    summary: 'A webhook endpoint',
    params: WebhookParams,
    response: WebhookEndpoint,
    handler: ({ auth, params }) => found(auth.projectId, params.webhook_id),
  });

  defineRoute(app, {
    method: 'PATCH',
    url: '/api/v1/webhooks/:webhook_id',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      'Change a webhook endpoint: url, events, agent_ids, description, enabled (false pauses it: its deliveries wait)',
    params: WebhookParams,
    body: PatchWebhookBody,
    response: WebhookEndpoint,
    handler: async ({ auth, params, body }) => {
      const endpoint = await ctx.webhooks.update(auth.projectId, params.webhook_id, body);
      if (!endpoint) throw AppError.notFound('webhook', params.webhook_id);
      return endpoint;
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/api/v1/webhooks/:webhook_id',
    scope: 'admin',
    tag: 'webhooks',
    summary: 'Delete a webhook endpoint and its deliveries',
    params: WebhookParams,
    status: 204,
    handler: async ({ auth, params }) => {
      if (!(await ctx.webhooks.delete(auth.projectId, params.webhook_id)))
        throw AppError.notFound('webhook', params.webhook_id);
      return undefined;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/webhooks/:webhook_id/test',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      'Send a signed ping to the endpoint now (paused or not) and answer how it answered; recorded among its deliveries, not retried',
    params: WebhookParams,
    response: WebhookTestResult,
    handler: async ({ auth, params }) => {
      const row = await ctx.webhooks.findRow(auth.projectId, params.webhook_id);
      if (!row) throw AppError.notFound('webhook', params.webhook_id);
      return ctx.deliverer.sendTest(row);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/api/v1/webhooks/:webhook_id/deliveries',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      "A webhook endpoint's recent deliveries, newest first: event, run, attempts, last answer, next attempt",
    params: WebhookParams,
    query: DeliveriesQuery,
    response: z.object({ deliveries: z.array(WebhookDelivery) }),
    handler: async ({ auth, params, query }) => {
      await found(auth.projectId, params.webhook_id);
      return {
        deliveries: await ctx.webhooks.deliveries(auth.projectId, params.webhook_id, query),
      };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/api/v1/webhooks/:webhook_id/deliveries/:delivery_id/retry',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      'Send a delivery again now (failed, delivered or pending), with a whole retry schedule ahead of it; the same id and body',
    params: DeliveryParams,
    response: WebhookDelivery,
    handler: async ({ auth, params }) => {
      const delivery = await ctx.webhooks.redeliver(
        auth.projectId,
        params.webhook_id,
        params.delivery_id,
      );
      if (!delivery) throw AppError.notFound('delivery', params.delivery_id);
      ctx.deliverer.kick();
      return delivery;
    },
  });
}
