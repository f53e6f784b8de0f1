import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Agent } from '@runlog/core';
import { describeEachDb, createTestApp, json, type TestApp } from '../../test/harness.js';

describeEachDb('PUT /agents/:id from two clients at once', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(() => t.close());

  it('keeps both changes when two PUTs set different fields at the same time', async () => {
    const lost: number[] = [];
    for (let i = 0; i < 20; i++) {
      const agent = `race-${i}`;
      const made = await t.request('PUT', `/api/v1/agents/${agent}`, { name: 'start' });
      expect(made.statusCode).toBe(200);
      const [steps, tokens] = await Promise.all([
        t.request('PUT', `/api/v1/agents/${agent}`, { max_steps: 5 }),
        t.request('PUT', `/api/v1/agents/${agent}`, { max_tokens: 100 }),
      ]);
      // each answer is the agent as stored, with what it set
      expect(json<Agent>(steps).max_steps).toBe(5);
      expect(json<Agent>(tokens).max_tokens).toBe(100);
      const a = json<Agent>(await t.request('GET', `/api/v1/agents/${agent}`));
      if (a.max_steps !== 5 || a.max_tokens !== 100 || a.name !== 'start') lost.push(i);
    }
    expect(lost).toEqual([]);
  });

  it('makes an agent once when two PUTs create it at the same time', async () => {
    const [a, b] = await Promise.all([
      t.request('PUT', '/api/v1/agents/born-twice', { max_steps: 7 }),
      t.request('PUT', '/api/v1/agents/born-twice', { description: 'twice' }),
    ]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    const agent = json<Agent>(await t.request('GET', '/api/v1/agents/born-twice'));
    expect(agent).toMatchObject({ max_steps: 7, description: 'twice' });
  });
});
