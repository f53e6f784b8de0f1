import { describe, expect, it } from 'vitest';
import { metadataHolds } from '@runlog/core';
import { metadataFilterValue, readMetadataFilter } from './MetadataFilter';

describe('the Metadata field', () => {
  const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v']));

  it('adds key=value, the key ending at the first =', () => {
    expect(readMetadataFilter('env=prod', {})).toEqual({ key: 'env', value: 'prod' });
    expect(readMetadataFilter('expr=a=b', {})).toEqual({ key: 'expr', value: 'a=b' });
    expect(readMetadataFilter('region=eu,west', {})).toEqual({ key: 'region', value: 'eu,west' });
    expect(readMetadataFilter('ключ=значение', {})).toEqual({ key: 'ключ', value: 'значение' });
    // spaces around the = and at the ends are how people type, not part of the filter
    expect(readMetadataFilter('  env = prod  ', {})).toEqual({ key: 'env', value: 'prod' });
    expect(readMetadataFilter('title=two words', {})).toEqual({ key: 'title', value: 'two words' });
    expect(readMetadataFilter('pr=42', { env: 'prod' })).toEqual({ key: 'pr', value: '42' });
  });

  it('says what is wrong with text it cannot add', () => {
    const error = (text: string, current: Record<string, string> = {}) => {
      const read = readMetadataFilter(text, current);
      return 'error' in read ? read.error : undefined;
    };
    expect(error('prod')).toBe('Write it as key=value, e.g. env=prod');
    expect(error('=prod')).toBe('A key goes before the =, e.g. env=prod');
    expect(error(' = prod')).toBe('A key goes before the =, e.g. env=prod');
    expect(error('env=')).toBe('Give env a value after the =, e.g. env=prod');
    expect(error('env = ')).toBe('Give env a value after the =, e.g. env=prod');
    expect(error('env=staging', { env: 'prod' })).toBe(
      'env is a filter already (= prod): remove that chip first',
    );
    expect(error('env=prod', { env: 'prod' })).toBe('env = prod is a filter already');
    expect(error('k10=v', ten)).toBe('At most 10 metadata filters: remove one first');
    expect(error('k0=w', ten)).toMatch(/^k0 is a filter already/);
    expect(error(`${'k'.repeat(201)}=v`)).toBe('A key is at most 200 characters');
    expect(error(`k=${'v'.repeat(501)}`)).toBe('A value is at most 500 characters');
    expect(error('__proto__=x')).toBe('This key or value cannot be filtered on');
    expect(error('k=a\u0000b')).toBe('This key or value cannot be filtered on');
    expect(error(`${'k'.repeat(200)}=${'v'.repeat(500)}`)).toBeUndefined();
    expect(error('k0=v', Object.fromEntries(Object.entries(ten).slice(1)))).toBeUndefined();
  });
});

describe("a run page's metadata links", () => {
  it('link strings, numbers and booleans by the value that finds them', () => {
    const metadata = { env: 'prod', pr: 42, ratio: 0.1, big: 1e21, ok: true, off: false };
    for (const [key, value] of Object.entries(metadata)) {
      const filter = metadataFilterValue(key, value);
      expect(filter, key).toBeDefined();
      expect(metadataHolds(metadata, key, filter!), key).toBe(true);
    }
    expect(metadataFilterValue('pr', 42)).toBe('42');
    expect(metadataFilterValue('ok', false)).toBe('false');
  });

  it('link nothing the filter cannot find', () => {
    expect(metadataFilterValue('nested', { env: 'prod' })).toBeUndefined();
    expect(metadataFilterValue('list', ['prod'])).toBeUndefined();
    expect(metadataFilterValue('none', null)).toBeUndefined();
    expect(metadataFilterValue('empty', '')).toBeUndefined();
    expect(metadataFilterValue('long', 'v'.repeat(501))).toBeUndefined();
    expect(metadataFilterValue('k'.repeat(201), 'v')).toBeUndefined();
    expect(metadataFilterValue('__proto__', 'v')).toBeUndefined();
    expect(metadataFilterValue('nul', 'a\u0000b')).toBeUndefined();
  });
});
