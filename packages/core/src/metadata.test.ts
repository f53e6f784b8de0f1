import { describe, expect, it } from 'vitest';
import {
  filterableMetadata,
  isJsonNumber,
  metadataHolds,
  metadataMatches,
  metadataParam,
  metadataQuery,
  parseMetadataPair,
} from './metadata.js';

describe('metadataHolds', () => {
  it('matches text exactly, numbers as numbers and booleans by name', () => {
    const m = { env: 'prod', pr: 42, ratio: 0.1, ok: true, off: false, big: 2 ** 53 };
    expect(metadataHolds(m, 'env', 'prod')).toBe(true);
    expect(metadataHolds(m, 'env', 'Prod')).toBe(false);
    expect(metadataHolds(m, 'pr', '42')).toBe(true);
    expect(metadataHolds(m, 'pr', '42.0')).toBe(true);
    expect(metadataHolds(m, 'pr', '4.2e1')).toBe(true);
    expect(metadataHolds(m, 'pr', '042')).toBe(false);
    expect(metadataHolds(m, 'pr', ' 42')).toBe(false);
    expect(metadataHolds(m, 'ratio', '0.1')).toBe(true);
    expect(metadataHolds(m, 'ok', 'true')).toBe(true);
    expect(metadataHolds(m, 'off', 'false')).toBe(true);
    expect(metadataHolds(m, 'ok', '1')).toBe(false);
    expect(metadataHolds(m, 'big', String(2 ** 53))).toBe(true);
    expect(metadataHolds(m, 'big', String(2n ** 53n + 1n))).toBe(false);
    expect(metadataHolds({ pr: '42' }, 'pr', '42.0')).toBe(false);
  });

  it('never matches null, objects, arrays, missing or inherited keys', () => {
    const m = { none: null, obj: { a: 1 }, list: ['prod'] };
    expect(metadataHolds(m, 'none', 'null')).toBe(false);
    expect(metadataHolds(m, 'obj', '{"a":1}')).toBe(false);
    expect(metadataHolds(m, 'list', 'prod')).toBe(false);
    expect(metadataHolds(m, 'missing', 'x')).toBe(false);
    expect(metadataHolds(m, 'toString', 'x')).toBe(false);
    expect(metadataHolds(null, 'a', 'b')).toBe(false);
    expect(metadataHolds(['b'], '0', 'b')).toBe(false);
  });

  it('needs every key of a filter', () => {
    expect(metadataMatches({ env: 'prod', pr: 1 }, { env: 'prod', pr: '1' })).toBe(true);
    expect(metadataMatches({ env: 'prod', pr: 1 }, { env: 'prod', pr: '2' })).toBe(false);
    expect(metadataMatches({}, {})).toBe(true);
  });
});

describe('metadataQuery and parseMetadataPair', () => {
  it('write and read the forms users give', () => {
    expect(metadataQuery({ env: 'prod', 'a.b': 'x=y' })).toEqual({
      'metadata[env]': 'prod',
      'metadata[a.b]': 'x=y',
    });
    expect(metadataQuery(undefined)).toEqual({});
    expect(parseMetadataPair('env=prod')).toEqual(['env', 'prod']);
    expect(parseMetadataPair('q=a=b')).toEqual(['q', 'a=b']);
    expect(parseMetadataPair('env=')).toEqual(['env', '']);
    expect(parseMetadataPair('=prod')).toBeUndefined();
    expect(parseMetadataPair('env')).toBeUndefined();
  });
});

describe('isJsonNumber and filterableMetadata', () => {
  it('take what the API takes', () => {
    for (const n of ['0', '-1', '42', '4.2e1', '-0.5', '1E3'])
      expect(isJsonNumber(n), n).toBe(true);
    for (const n of ['042', '.5', '1.', '+1', '0x10', 'NaN', '1e400', ' 1', ''])
      expect(isJsonNumber(n), n).toBe(false);
    expect(filterableMetadata('env', 'prod')).toBe(true);
    expect(filterableMetadata('k'.repeat(200), 'v'.repeat(500))).toBe(true);
    expect(filterableMetadata('k'.repeat(201), 'v')).toBe(false);
    expect(filterableMetadata('k', 'v'.repeat(501))).toBe(false);
    expect(filterableMetadata('', 'v')).toBe(false);
    expect(filterableMetadata('k', '')).toBe(false);
    expect(filterableMetadata('__proto__', 'v')).toBe(false);
    expect(filterableMetadata('k\u0000', 'v')).toBe(false);
    expect(filterableMetadata('k', 'v\u0000')).toBe(false);
    expect(metadataParam('a]b')).toBe('metadata[a]b]');
  });
});
