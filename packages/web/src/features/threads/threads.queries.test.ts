import { describe, expect, it } from 'vitest';
import {
  threadIdFromPath,
  threadListKey,
  threadListParams,
  threadPath,
  threadsViewFromParams,
} from './threads.queries';

describe('thread paths', () => {
  it('encode any thread id and read it back exactly', () => {
    for (const id of ['conv-42', 'support/ticket 7', 'a%2Fb', 'émoji 😀?#&']) {
      const path = threadPath(id);
      expect(path.split('/')).toHaveLength(3);
      expect(threadIdFromPath(path)).toBe(id);
    }
  });

  it('read nothing from another path or a malformed encoding', () => {
    expect(threadIdFromPath('/threads')).toBeUndefined();
    expect(threadIdFromPath('/threads/a/b')).toBeUndefined();
    expect(threadIdFromPath('/threads/%E0%A4%A')).toBeUndefined();
    expect(threadIdFromPath('/threads/conv-1/')).toBe('conv-1');
  });
});

describe('the Threads view', () => {
  it('reads its agents, user and search from the URL, and nothing else', () => {
    expect(
      threadsViewFromParams(new URLSearchParams('agent=a,,b&user_id=dana&q=Refund&page=2')),
    ).toEqual({ agent: ['a', 'b'], user: 'dana', q: 'Refund' });
    expect(threadsViewFromParams(new URLSearchParams())).toEqual({ agent: [], user: '', q: '' });
  });

  it('reads the search as the field applies it: trimmed, its case and wildcards kept', () => {
    const q = (search: string) => threadsViewFromParams(new URLSearchParams(search)).q;
    expect(q('q=%20Conv-REFUND%20%20')).toBe('Conv-REFUND');
    expect(q('q=support%2Fticket%207%3F')).toBe('support/ticket 7?');
    expect(q('q=a_b%25')).toBe('a_b%');
    expect(q('q=%20')).toBe('');
  });

  it('sends the search as q beside the other filters, and leaves empty ones out', () => {
    expect(threadListParams({ agent: ['a', 'b'], user: 'dana', q: 'Refund' })).toEqual({
      agent_id: 'a,b',
      user_id: 'dana',
      q: 'Refund',
    });
    expect(threadListParams({ agent: [], user: '', q: '' })).toEqual({
      agent_id: undefined,
      user_id: undefined,
      q: undefined,
    });
  });

  it('keys each search apart, under the prefix live updates refresh', () => {
    const all = threadListKey({ agent: [], user: '', q: '' });
    const searched = threadListKey({ agent: [], user: '', q: 'refund' });
    // connectLive's refreshThreads invalidates ['threads', 'list']
    expect(searched.slice(0, 2)).toEqual(['threads', 'list']);
    expect(searched).not.toEqual(all);
    expect(searched).not.toEqual(threadListKey({ agent: [], user: '', q: 'Refund' }));
  });
});
