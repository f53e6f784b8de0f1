// The addresses under /agents/ that a run's page lives at: the Agents tab is marked current
// on a run's page (its breadcrumb starts at Agents), and what is left of a run's address with
// its end cut off opens the agent or its runs instead of "Page not found".

import { expect, it } from 'vitest';
import { seedRuns } from './seed.js';
import { browserSuite, screenshot, signedIn } from './browser.js';

browserSuite('addresses under /agents/', () => {
  const web = signedIn();
  const agent = 'address-agent.v2:eu';

  it("marks the Agents tab current on a run's page", async () => {
    await seedRuns(web.api, [
      { id: 'addr-run-1', agent, status: 'succeeded', ago: 60_000, durationMs: 900 },
    ]);
    const nav = web.page.getByRole('navigation', { name: 'Main' });
    const agentsTab = nav.getByRole('link', { name: 'Agents' });
    // opened by its id alone, the run's page moves to its agent's address
    await web.page.goto(`${web.api.url}/runs/addr-run-1`);
    await web.page.getByRole('heading', { level: 1, name: /Run/ }).waitFor();
    await expect
      .poll(() => new URL(web.page.url()).pathname)
      .toBe(`/agents/${encodeURIComponent(agent)}/runs/addr-run-1`);
    await screenshot(web.page, 'agent-addresses-run-tab');
    await expect.poll(() => agentsTab.getAttribute('class')).toContain('active');
    expect(await agentsTab.getAttribute('aria-current')).toBe('location');
    expect(await nav.locator('a.active').count()).toBe(1);
    // on the list itself it is the page
    await agentsTab.click();
    await expect.poll(() => agentsTab.getAttribute('aria-current')).toBe('page');
  });

  it("opens the agent from its address and its runs from the agent's runs address", async () => {
    await seedRuns(web.api, [
      { id: 'addr-run-2', agent, status: 'failed', ago: 30_000, durationMs: 500, error: 'no' },
      { id: 'addr-other', agent: 'address-other', status: 'succeeded', ago: 20_000, durationMs: 5 },
    ]);
    const encoded = encodeURIComponent(agent);

    await web.page.goto(`${web.api.url}/agents/${encoded}`);
    const row = web.page.locator(`button.agent-row[data-agent-id="${agent}"]`);
    await expect.poll(() => row.getAttribute('aria-expanded')).toBe('true');
    expect(new URL(web.page.url()).searchParams.get('agent')).toBe(agent);
    expect(await web.page.getByRole('heading', { name: 'Page not found' }).count()).toBe(0);

    await web.page.goto(`${web.api.url}/agents/${encoded}/runs`);
    await web.page.getByRole('button', { name: /Actions for run addr-run-2/ }).waitFor();
    await expect.poll(() => web.page.locator('select.agent-select').inputValue()).toBe(agent);
    expect(await web.page.getByRole('button', { name: /Actions for run addr-other/ }).count()).toBe(
      0,
    );
    await screenshot(web.page, 'agent-addresses-runs');

    await web.page.goto(`${web.api.url}/agents`);
    await web.page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    expect(new URL(web.page.url()).pathname).toBe('/');
  });
});
