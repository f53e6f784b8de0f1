import { useEffect, useId, useRef, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { AgentSummary } from '@runlog/core';
import { errorMessage } from '../../lib/api';
import { formatExact } from '../../lib/format';
import { toast } from '../../components/Toasts';
import { needsScope, useCan } from '../auth/useCan';
import { plural } from '../runs/bulk';
import { agentQueuedQuery, agentsKey, applyAgentToSummaries, putAgent } from './agents.queries';

/** How many of its runs pausing the agent holds back, as its question says it. */
function QueuedNote({ agentId, asking }: { agentId: string; asking: boolean }) {
  // read as the question opens: a count from a minute ago is not the one pausing holds back
  const queued = useQuery({ ...agentQueuedQuery(agentId), enabled: asking, staleTime: 0 });
  if (queued.isError) return null;
  if (!queued.data)
    return (
      <p className="muted" data-testid="pause-agent-queued">
        Counting its queued runs…
      </p>
    );
  const { total, capped } = queued.data;
  return (
    <p data-testid="pause-agent-queued">
      {total === 0
        ? 'None of its runs is queued now.'
        : `${capped ? 'At least ' : ''}${plural(total, 'queued run')} of it ${total === 1 && !capped ? 'waits' : 'wait'} until it is resumed.`}
    </p>
  );
}

/**
 * Pause agent or Resume agent: paused, workers are handed none of its queued runs (they wait,
 * queued) and its schedule queues none; runs under way go on. Pausing asks first, saying so
 * and how many runs wait; resuming does not. Sends `{paused}` alone, so settings changed
 * meanwhile elsewhere are kept.
 */
export function PauseAgentButton({ agent }: { agent: AgentSummary }) {
  const client = useQueryClient();
  const canWrite = useCan('write');
  const dialog = useRef<HTMLDialogElement>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  const [asking, setAsking] = useState(false);
  const id = useId();
  const paused = agent.paused_at !== null;
  const mutation = useMutation({
    mutationFn: (pause: boolean) => putAgent(agent.id, { paused: pause }),
    onSuccess: (saved) => {
      client.setQueryData<AgentSummary[]>(agentsKey, (list) =>
        list ? applyAgentToSummaries(list, saved) : list,
      );
      toast(
        saved.paused_at
          ? `${saved.name} paused: workers take none of its queued runs until it is resumed`
          : `${saved.name} resumed: workers take its queued runs again${saved.next_run_at ? `; next run ${new Date(saved.next_run_at).toLocaleString()}` : ''}`,
      );
    },
    onError: (err, pause) =>
      toast(
        `${pause ? 'Pausing' : 'Resuming'} ${agent.name} failed: ${errorMessage(err)}`,
        'error',
      ),
  });

  useEffect(() => {
    const d = dialog.current;
    if (!asking || !d) return;
    if (!d.open) d.showModal();
    // as Retry's question: undone by Resume at once, no harm to take by Enter
    confirm.current?.focus();
  }, [asking]);

  const schedule = agent.schedule;
  return (
    <>
      <button
        type="button"
        className="btn btn-small"
        disabled={!canWrite}
        // busy, not disabled: a disabled button drops the keyboard focus to the page's body
        aria-disabled={mutation.isPending || undefined}
        title={
          canWrite
            ? paused
              ? `Paused since ${formatExact(agent.paused_at!)}: let workers take its queued runs again${schedule ? ', and its schedule queue runs from its next slot' : ''}`
              : `Hand workers none of its queued runs${schedule ? ' and queue none on its schedule' : ''} until resumed; runs under way go on`
            : `${needsScope('write')} to ${paused ? 'resume' : 'pause'} the agent`
        }
        onClick={() => {
          if (mutation.isPending) return;
          if (paused) mutation.mutate(false);
          else setAsking(true);
        }}
      >
        {paused ? 'Resume agent' : 'Pause agent'}
      </button>
      <dialog
        ref={dialog}
        className="dialog"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-what`}
        onClose={() => setAsking(false)}
      >
        {asking ? (
          <>
            <h2 id={`${id}-title`}>Pause {agent.name}?</h2>
            <div id={`${id}-what`}>
              <p>
                Workers are handed none of its queued runs until you resume it: they wait, queued,
                and so do runs queued meanwhile (Run now, the API, retries).
              </p>
              {schedule ? (
                <p>
                  Its schedule (<span className="mono">{schedule.cron}</span>) queues no run while
                  it is paused; resumed, it goes on from its next slot.
                </p>
              ) : null}
              <p>Runs under way go on.</p>
              <QueuedNote agentId={agent.id} asking={asking} />
            </div>
            <div className="dialog-actions">
              <button type="button" className="btn" onClick={() => dialog.current?.close()}>
                Cancel
              </button>
              <button
                ref={confirm}
                type="button"
                className="btn btn-primary"
                disabled={!canWrite}
                onClick={() => {
                  dialog.current?.close();
                  if (!mutation.isPending) mutation.mutate(true);
                }}
              >
                Pause agent
              </button>
            </div>
          </>
        ) : null}
      </dialog>
    </>
  );
}
