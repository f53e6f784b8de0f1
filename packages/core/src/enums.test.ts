import { describe, expect, it } from 'vitest';
import { KEY_SCOPES, scopeAllows } from './enums.js';

describe('scopeAllows', () => {
  it('lets admin do all, write what write and read need, and read only read', () => {
    const allowed = KEY_SCOPES.flatMap((has) =>
      KEY_SCOPES.filter((needs) => scopeAllows(has, needs)).map((needs) => `${has}>${needs}`),
    );
    expect(allowed).toEqual([
      'read>read',
      'write>read',
      'write>write',
      'admin>read',
      'admin>write',
      'admin>admin',
    ]);
  });
});
