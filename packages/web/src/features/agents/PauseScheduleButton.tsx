import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { AgentSummary } from '@runlog/core';
import { errorMessage } from '../../lib/api';
import { toast } from '../../components/Toasts';
import { needsScope, useCan } from '../auth/useCan';
import { agentsKey, applyAgentToSummaries, putAgent } from './agents.queries';

/**
 * Pause or Resume, beside Settings, for an agent with a schedule: a paused schedule queues
 * no run; resuming goes on from its next slot (the ones passed while paused are skipped).
 * Sends `{schedule: {paused}}` alone, so a cron changed meanwhile elsewhere is kept.
 */
export function PauseScheduleButton({ agent }: { agent: AgentSummary }) {
  const client = useQueryClient();
  const canWrite = useCan('write');
  const paused = agent.schedule?.paused ?? false;
  const mutation = useMutation({
    mutationFn: (pause: boolean) => putAgent(agent.id, { schedule: { paused: pause } }),
    onSuccess: (saved) => {
      client.setQueryData<AgentSummary[]>(agentsKey, (list) =>
        list ? applyAgentToSummaries(list, saved) : list,
      );
      toast(
        saved.schedule?.paused
          ? `Schedule of ${saved.name} paused: it queues no run until resumed`
          : `Schedule of ${saved.name} resumed${saved.next_run_at ? `; next run ${new Date(saved.next_run_at).toLocaleString()}` : ''}`,
      );
    },
    onError: (err) =>
      toast(
        `${paused ? 'Resuming' : 'Pausing'} the schedule failed: ${errorMessage(err)}`,
        'error',
      ),
  });
  if (!agent.schedule) return null;
  return (
    <button
      type="button"
      className="btn btn-small"
      disabled={!canWrite}
      // busy, not disabled: a disabled button drops the keyboard focus to the page's body
      aria-disabled={mutation.isPending || undefined}
      title={
        canWrite
          ? paused
            ? `Queue runs on ${agent.schedule.cron} (${agent.schedule.timezone}) again, from its next slot`
            : `Queue no run on ${agent.schedule.cron} (${agent.schedule.timezone}) until resumed`
          : `${needsScope('write')} to ${paused ? 'resume' : 'pause'} the schedule`
      }
      onClick={() => {
        if (!mutation.isPending) mutation.mutate(!paused);
      }}
    >
      {paused ? 'Resume schedule' : 'Pause schedule'}
    </button>
  );
}
