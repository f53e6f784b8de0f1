import { queryOptions } from '@tanstack/react-query';
import type { KeyScope } from '@runlog/core';
import { ApiError, api, showProject } from '../../lib/api';

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
        const session = await api<Session>('GET', '/session');
        showProject(session.project_id);
        return session;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          showProject(undefined);
          return null;
        }
        throw err;
      }
    },
    staleTime: 60_000,
    retry: false,
  });

export const login = async (key: string): Promise<Session> => {
  const session = await api<Session>('POST', '/session', { body: { key } });
  showProject(session.project_id);
  return session;
};
export const logout = async (): Promise<void> => {
  await api<void>('DELETE', '/session');
  showProject(undefined);
};
