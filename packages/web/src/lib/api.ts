import { PROJECT_HEADER, type ApiErrorBody } from '@runlog/core';
import { searchText } from './params';

/** A failed API call: the server's error code and message, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the API answers 401: the session ended or was never there. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

const projectChangedListeners = new Set<Listener>();

/**
 * Called when the API refuses a request for naming the project this page shows: the browser
 * logged in to another project since (in another tab), and its one cookie is that project's.
 */
export function onProjectChanged(listener: Listener): () => void {
  projectChangedListeners.add(listener);
  return () => projectChangedListeners.delete(listener);
}

/** The project this page shows, once the session says; every request names it. */
let shownProject: string | undefined;

/** Sets the project this page shows (undefined when logged out). */
export function showProject(projectId: string | undefined): void {
  shownProject = projectId;
}

/** The project this page shows, if it knows. */
export function shownProjectId(): string | undefined {
  return shownProject;
}

type Query = Record<string, string | number | undefined | null>;

/**
 * `/api/v1` + path + the defined query parameters, brackets as the API writes them (an export
 * link reads `?metadata[env]=prod`).
 * @example apiUrl('/runs.csv', { 'metadata[env]': 'prod', q: undefined }) // '/api/v1/runs.csv?metadata[env]=prod'
 */
export function apiUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = searchText(params);
  return `/api/v1${path}${qs ? `?${qs}` : ''}`;
}

/**
 * Calls the API with the session cookie; resolves to the JSON body (undefined for 204).
 * @example const { agents } = await api<{ agents: AgentSummary[] }>('GET', '/agents');
 */
export async function api<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  options: { query?: Query; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  return (await apiExchange<T>(method, path, options)).body;
}

/**
 * `api`, answering the success status with the body, where the status tells outcomes apart
 * (a retry with `once`: 201 queued, 200 retried already).
 * @example const { status, body } = await apiExchange<Run>('POST', '/runs/r1/retry', { body: { once: true } });
 */
export async function apiExchange<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  options: { query?: Query; body?: unknown; signal?: AbortSignal } = {},
): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(apiUrl(path, options.query), {
      method,
      credentials: 'same-origin',
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(shownProject !== undefined ? { [PROJECT_HEADER]: shownProject } : {}),
      },
      body: options.body !== undefined ? JSON.stringify(options.body) : null,
      signal: options.signal ?? null,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The server cannot be reached. Check that Runlog is running.');
  }
  if (res.status === 204) return { status: 204, body: undefined as T };
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // a proxy's HTML error page: reported below by status
  }
  if (!res.ok) {
    const err = (body as Partial<ApiErrorBody> | undefined)?.error;
    if (res.status === 401) {
      // the session ended: the next one (a login here or in another tab) names its project
      shownProject = undefined;
      for (const l of unauthorizedListeners) l();
    }
    const field = (err?.details?.[0] as { field?: unknown } | undefined)?.field;
    if (res.status === 409 && field === `headers.${PROJECT_HEADER}`)
      for (const l of projectChangedListeners) l();
    throw new ApiError(
      res.status,
      err?.code ?? 'http_error',
      err?.message ?? `The server answered ${res.status} ${res.statusText}`,
      err?.details,
    );
  }
  return { status: res.status, body: body as T };
}

/** A message fit for people from anything a query or mutation threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return 'Something went wrong';
}
