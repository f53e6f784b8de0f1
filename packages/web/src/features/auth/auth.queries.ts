import { queryOptions } from '@tanstack/react-query';
import type { KeyScope } from '@runlog/core';
import { ApiError, api } from '../../lib/api';

export interface Session {
  project_id: string;
  project_name: string;
  scope: KeyScope;
  /** The key this session signed in with, where the server says (to mark it in Settings). */
  key_id?: string;
}

/** The logged-in session, or null when there is none (401). */
export const sessionQuery = () =>
  queryOptions({
    queryKey: ['session'] as const,
    queryFn: async (): Promise<Session | null> => {
      try {
        return await api<Session>('GET', '/session');
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return null;
        throw err;
      }
    },
    staleTime: 60_000,
    retry: false,
  });

export const login = (key: string) => api<Session>('POST', '/session', { body: { key } });
export const logout = () => api<void>('DELETE', '/session');
