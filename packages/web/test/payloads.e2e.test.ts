// A step's payloads in a real browser: an LLM call's messages read without a click each, a
// large nested value stays folded.

import { expect, it } from 'vitest';
import { ingest } from './seed.js';
import { browserSuite, signedIn, screenshot } from './browser.js';

browserSuite('payloads in a real browser', () => {
  const web = signedIn();

  it("shows an LLM step's messages open, and a large nested value folded", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i, title: `issue ${i}` }));
    await ingest(web.api, [
      { type: 'run.start', run: { id: 'chat-1', agent_id: 'chatter' } },
      {
        type: 'step.end',
        step: {
          id: 'chat-1-llm',
          run_id: 'chat-1',
          type: 'llm',
          name: 'answer',
          model: 'gpt-4o-mini',
          input: {
            messages: [
              { role: 'system', content: 'Answer in one line.' },
              { role: 'user', content: 'Why is the build red?' },
            ],
            context: { search: { rows } },
          },
          output: 'A flaky test.',
        },
      },
      { type: 'run.end', run: { id: 'chat-1', status: 'succeeded' } },
    ]);
    await web.page.goto(`${web.api.url}/agents/chatter/runs/chat-1`);
    await web.page.locator('.tl-row[data-step-id="chat-1-llm"]').click();
    const input = web.page.locator('.step-details').getByRole('region', { name: 'Input' });
    await input.waitFor();
    expect(await input.getByText('“Why is the build red?”').isVisible()).toBe(true);
    expect(await input.getByText('“Answer in one line.”').isVisible()).toBe(true);
    // forty rows are not read at a glance: they wait for a click
    const list = input.locator('.j-toggle', { hasText: 'rows:' });
    expect(await list.getAttribute('aria-expanded')).toBe('false');
    expect(await input.getByText('“issue 0”').count()).toBe(0);
    await screenshot(web.page, 'step-messages');
  });
});
