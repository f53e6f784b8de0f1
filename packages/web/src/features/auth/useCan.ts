import { useQuery } from '@tanstack/react-query';
import { scopeAllows, type KeyScope } from '@runlog/core';
import { sessionQuery } from './auth.queries';

/**
 * Whether this session's key may do what needs `scope`. A control it forbids is disabled
 * with `needsScope(scope)` as its reason, not hidden: the user learns the feature exists.
 * @example const canWrite = useCan('write'); <button disabled={!canWrite} title={canWrite ? undefined : needsScope('write')} />
 */
export function useCan(scope: KeyScope): boolean {
  const session = useQuery(sessionQuery());
  return session.data ? scopeAllows(session.data.scope, scope) : false;
}

const NEEDS: Record<KeyScope, string> = {
  read: 'Needs an API key',
  write: 'Needs a write or admin key',
  admin: 'Needs an admin key',
};

/** Why a control `useCan(scope)` forbids is disabled, for its title or a note beside it. */
export function needsScope(scope: KeyScope): string {
  return NEEDS[scope];
}
