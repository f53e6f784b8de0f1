import { describe, expect, it } from 'vitest';
import { threadIdFromPath, threadPath } from './threads.queries';

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
