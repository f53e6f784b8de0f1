import { describe, expect, it } from 'vitest';
import { agentChoices } from './AgentSelect';

describe('agentChoices', () => {
  it('names each agent, with its id beside a name two agents share', () => {
    expect(
      agentChoices([
        { id: 'bug-triager', name: 'Bug Triager' },
        { id: 'support-bot', name: 'Support Bot' },
        { id: 'support-bot-staging', name: 'Support Bot' },
        { id: 'code-reviewer', name: 'code-reviewer' },
      ]).map((a) => a.label),
    ).toEqual([
      'Bug Triager',
      'Support Bot (support-bot)',
      'Support Bot (support-bot-staging)',
      'code-reviewer',
    ]);
  });
});
