import { queryOptions } from '@tanstack/react-query';
import type {
  ApiKey,
  CreateWebhookBody,
  CreatedKey,
  CreatedWebhook,
  KeyScope,
  ModelPrice,
  PatchWebhookBody,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookTestResult,
} from '@runlog/core';
import { api } from '../../lib/api';

export const keysQuery = () =>
  queryOptions({
    queryKey: ['keys'] as const,
    queryFn: ({ signal }) =>
      api<{ keys: ApiKey[] }>('GET', '/keys', { signal }).then((r) => r.keys),
  });

export const settingsQuery = () =>
  queryOptions({
    queryKey: ['settings'] as const,
    queryFn: ({ signal }) => api<{ retention_days: number }>('GET', '/settings', { signal }),
  });

export const pricesQuery = () =>
  queryOptions({
    queryKey: ['prices'] as const,
    queryFn: ({ signal }) =>
      api<{ prices: ModelPrice[] }>('GET', '/prices', { signal }).then((r) => r.prices),
  });

export const createKey = (scope: KeyScope, name?: string) =>
  api<CreatedKey>('POST', '/keys', { body: { scope, ...(name ? { name } : {}) } });
export const revokeKey = (id: string) => api<ApiKey>('DELETE', `/keys/${encodeURIComponent(id)}`);
export const saveRetention = (days: number) =>
  api<{ retention_days: number }>('PATCH', '/settings', { body: { retention_days: days } });
export const putPrice = (
  model: string,
  price: { input_per_mtok: number; output_per_mtok: number; cached_input_per_mtok?: number | null },
) => api<ModelPrice>('PUT', `/prices/${encodeURIComponent(model)}`, { body: price });
export const deletePrice = (model: string) =>
  api<void>('DELETE', `/prices/${encodeURIComponent(model)}`);

export const webhooksQuery = () =>
  queryOptions({
    queryKey: ['webhooks'] as const,
    queryFn: ({ signal }) =>
      api<{ webhooks: WebhookEndpoint[] }>('GET', '/webhooks', { signal }).then((r) => r.webhooks),
  });

export const webhookDeliveriesQuery = (id: string) =>
  queryOptions({
    queryKey: ['webhooks', id, 'deliveries'] as const,
    queryFn: ({ signal }) =>
      api<{ deliveries: WebhookDelivery[] }>(
        'GET',
        `/webhooks/${encodeURIComponent(id)}/deliveries`,
        { signal, query: { limit: 20 } },
      ).then((r) => r.deliveries),
    // a pending delivery is being tried, or will be: its outcome shows without a reload
    refetchInterval: (query) =>
      query.state.data?.some((d) => d.status === 'pending') ? 3_000 : false,
  });

export const createWebhook = (body: CreateWebhookBody) =>
  api<CreatedWebhook>('POST', '/webhooks', { body });
export const patchWebhook = (id: string, body: PatchWebhookBody) =>
  api<WebhookEndpoint>('PATCH', `/webhooks/${encodeURIComponent(id)}`, { body });
export const deleteWebhook = (id: string) =>
  api<void>('DELETE', `/webhooks/${encodeURIComponent(id)}`);
export const testWebhook = (id: string) =>
  api<WebhookTestResult>('POST', `/webhooks/${encodeURIComponent(id)}/test`);
export const redeliverWebhook = (id: string, deliveryId: string) =>
  api<WebhookDelivery>(
    'POST',
    `/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/retry`,
  );
