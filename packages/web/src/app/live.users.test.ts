import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import { runFixture } from '../../../core/test/fixtures';
import { userKey, userListKey } from '../features/users/users.queries';
import { foldRun } from './live';

describe('live updates and the users', () => {
  it("ask again for the users' sums when a run of a user changes, not for a run of none", () => {
    const client = new QueryClient();
    let asked = 0;
    const refreshUsers = () => asked++;
    const run = runFixture({ id: 'r1', user_id: 'dana@example.com' });
    foldRun(client, run, { refreshUsers });
    expect(asked).toBe(1);
    foldRun(client, runFixture({ id: 'r2', user_id: null }), { refreshUsers });
    expect(asked).toBe(1);
  });

  it('keys each filtered list and each user apart, under the prefixes live updates refresh', () => {
    const a = userListKey({ agent: ['a'], from: '', to: '', q: '' });
    const b = userListKey({ agent: [], from: '', to: '', q: '' });
    const searched = userListKey({ agent: [], from: '', to: '', q: 'dana' });
    // connectLive's refreshUsers invalidates ['users', 'list'] and ['users', 'one']
    expect(a.slice(0, 2)).toEqual(['users', 'list']);
    expect(searched.slice(0, 2)).toEqual(['users', 'list']);
    expect(userKey('dana').slice(0, 2)).toEqual(['users', 'one']);
    expect(a).not.toEqual(b);
    // another search is another list, asked for anew
    expect(searched).not.toEqual(b);
    expect(searched).not.toEqual(userListKey({ agent: [], from: '', to: '', q: 'Dana' }));
  });
});
