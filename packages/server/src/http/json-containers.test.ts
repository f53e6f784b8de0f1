import { describe, expect, it } from 'vitest';
import { jsonContainersWithin } from './json-containers.js';

describe('jsonContainersWithin', () => {
  it('counts the objects and arrays of JSON text, not the brackets in its strings', () => {
    expect(jsonContainersWithin('{"a":[1,{}],"b":[]}', 3)).toBe(false);
    expect(jsonContainersWithin('{"a":[1,{}],"b":[]}  ', 4)).toBe(true);
    // an escaped quote does not end a string; an escaped backslash before one does
    expect(jsonContainersWithin('["{\\"[{[{", "\\\\", {}]', 2)).toBe(true);
    expect(jsonContainersWithin('["{\\"[{[{", "\\\\", {}, []]', 2)).toBe(false);
    // nested arrays are one character each
    expect(jsonContainersWithin('[[[[]]]]', 3)).toBe(false);
  });
});
