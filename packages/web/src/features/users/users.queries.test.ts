import { describe, expect, it } from 'vitest';
import { userIdFromPath, userListParams, userPath, usersViewFromParams } from './users.queries';

describe('user paths', () => {
  it('encode any user id and read it back exactly', () => {
    for (const id of ['dana@example.com', 'team/ops 7', 'a%2Fb', 'émoji 😀?#&']) {
      const path = userPath(id);
      expect(path.split('/')).toHaveLength(3);
      expect(userIdFromPath(path)).toBe(id);
    }
  });

  it('read nothing from another path or a malformed encoding', () => {
    expect(userIdFromPath('/users')).toBeUndefined();
    expect(userIdFromPath('/users/a/b')).toBeUndefined();
    expect(userIdFromPath('/usersx/a')).toBeUndefined();
    expect(userIdFromPath('/threads/dana')).toBeUndefined();
    expect(userIdFromPath('/users/%E0%A4%A')).toBeUndefined();
    expect(userIdFromPath('/users/dana/')).toBe('dana');
  });
});

describe('the Users view', () => {
  it('reads its agents, range and search from the URL, and nothing else', () => {
    const view = usersViewFromParams(
      new URLSearchParams('agent=a,,b&from=2026-01-05T09:00:00.000Z&user_id=x&page=3&q=Dana'),
    );
    expect(view).toEqual({
      agent: ['a', 'b'],
      from: '2026-01-05T09:00:00.000Z',
      to: '',
      q: 'Dana',
    });
    expect(usersViewFromParams(new URLSearchParams())).toEqual({
      agent: [],
      from: '',
      to: '',
      q: '',
    });
  });

  it('reads the search as the field applies it: trimmed, its case and wildcards kept', () => {
    const q = (search: string) => usersViewFromParams(new URLSearchParams(search)).q;
    expect(q('q=%20%20Dana%40Example%20')).toBe('Dana@Example');
    expect(q('q=50%25_off')).toBe('50%_off');
    expect(q('q=%20%20')).toBe('');
    expect(q('q=')).toBe('');
  });

  it('sends the search as q, and no q without one', () => {
    const view = { agent: [], from: '', to: '' };
    expect(userListParams({ ...view, q: 'Dana@' }).q).toBe('Dana@');
    expect(userListParams({ ...view, q: '' }).q).toBeUndefined();
    expect(userListParams({ ...view, agent: ['support-bot'], q: 'lee' })).toEqual({
      agent_id: 'support-bot',
      from: undefined,
      to: undefined,
      q: 'lee',
    });
  });

  it('asks for the range in epoch ms, a To picked to the minute reaching through it', () => {
    const params = userListParams({
      agent: ['support-bot', 'billing-bot'],
      from: '2026-01-05T09:00:00.000Z',
      to: '2026-01-05T10:30:00.000Z',
      q: '',
    });
    expect(params).toEqual({
      agent_id: 'support-bot,billing-bot',
      from: Date.UTC(2026, 0, 5, 9),
      to: Date.UTC(2026, 0, 5, 10, 30, 59, 999),
      q: undefined,
    });
    // a To with seconds (a link written by hand) is kept as it is; no filter asks for none
    expect(userListParams({ agent: [], from: '', to: '2026-01-05T10:30:15.000Z', q: '' })).toEqual({
      agent_id: undefined,
      from: undefined,
      to: Date.UTC(2026, 0, 5, 10, 30, 15),
      q: undefined,
    });
    expect(userListParams({ agent: [], from: 'not a time', to: '', q: '' }).from).toBeUndefined();
  });
});
