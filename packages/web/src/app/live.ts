import { useEffect, useSyncExternalStore } from 'react';
import type { QueryClient } from '@tanstack/react-query';
import {
  PAYLOAD_FIELDS,
  isTruncatedJson,
  type Agent,
  type AgentSummary,
  type Run,
  type RunList,
  type RunStatus,
  type RunWithSteps,
  type Step,
  type WsServerMessage,
} from '@runlog/core';
import { realtime } from '../lib/realtime';
import { isActive } from '../lib/format';
import { agentRunsKey, agentsKey, applyAgentToSummaries } from '../features/agents/agents.queries';
import {
  AGENT_RUNS_LIMIT,
  applyRunToAgents,
  applyRunToList,
  dropRunFromList,
  newerRun,
  removeRunFromList,
  replaceRunInList,
  runMatches,
} from '../features/runs/runs.cache';
import { PAGE_SIZE, viewFilters, type RunsView } from '../features/runs/runs.queries';
import { SUB_RUNS_LIMIT, runDetailKey, subRunsKey } from '../features/run-detail/runDetail.queries';
import { applyRunToDetail, applyStepsToRun } from '../features/run-detail/steps.cache';
import { scoresKey } from '../features/scores/scores.queries';
import { threadRunsKey } from '../features/threads/threads.queries';
import {
  applyRunToThread,
  dropRunFromThread,
  type ThreadRuns,
} from '../features/threads/threads.cache';

/** Invalidates at most once per `ms`, trailing, so bursts of updates cost one refetch. */
function throttled(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}

/** Which cached queries a topic keeps current. */
function keysForTopic(topic: string): readonly unknown[][] {
  if (topic === 'runs')
    return [['runs', 'list'], [...agentsKey], ['stats'], ['threads'], ['users'], ['workers']];
  if (topic === 'agents') return [[...agentsKey]];
  // and the sub-run lists, which hear a sub-run's updates on its agent's topic
  if (topic.startsWith('agent:')) return [[...agentRunsKey(topic.slice(6))], ['runs', 'children']];
  if (topic.startsWith('run:'))
    return [[...runDetailKey(topic.slice(4))], [...scoresKey(topic.slice(4))]];
  return [];
}

/**
 * Folds one run into every cached query that shows it: the agents list, the agent's recent
 * runs, the run's detail and the Runs page lists. Mutations (Run now, Stop, Retry) use it too,
 * so the answer shows at once without waiting for the WebSocket.
 */
export function foldRun(
  client: QueryClient,
  run: Run,
  hooks: {
    refreshAgents?: () => void;
    refreshSearches?: () => void;
    /** Asks again for the thread lists and summaries, which sum up a thread's runs. */
    refreshThreads?: () => void;
    /** Asks again for the user lists and summaries, which sum up a user's runs. */
    refreshUsers?: () => void;
    /** The run appeared, started or ended with this update (its progress is not a change). */
    stateChanged?: boolean;
    /**
     * From a list topic (`runs`, `agent:<id>`), which carries fields over 64 KiB as
     * previews: the run's page, which holds them whole, is not folded but marked stale (an
     * open page hears the run whole on `run:<id>`).
     */
    listed?: boolean;
  } = {},
): void {
  const agents = client.getQueryData<AgentSummary[]>(agentsKey);
  if (agents) {
    const next = applyRunToAgents(agents, run);
    if (next !== agents) client.setQueryData(agentsKey, next);
    // new agents and the 24 h counts come from the server: a run appearing, starting or
    // ending changes the counts, its progress updates while it runs do not
    if (!agents.some((a) => a.id === run.agent_id) || hooks.stateChanged) hooks.refreshAgents?.();
  }
  client.setQueryData<RunList>(agentRunsKey(run.agent_id), (d) =>
    d ? applyRunToList(d, run, AGENT_RUNS_LIMIT) : d,
  );
  // a sub-agent's run, into its parent's list of sub-runs when that is open
  if (run.parent_run_id)
    client.setQueryData<RunList>(subRunsKey(run.parent_run_id), (d) =>
      d ? applyRunToList(d, run, SUB_RUNS_LIMIT) : d,
    );
  if (hooks.listed && PAYLOAD_FIELDS.some((f) => isTruncatedJson(run[f])))
    // (and the views of its first steps only, under the same key)
    void client.invalidateQueries({ queryKey: runDetailKey(run.id), refetchType: 'none' });
  else
    client.setQueriesData<RunWithSteps>({ queryKey: runDetailKey(run.id) }, (d) =>
      d ? applyRunToDetail(d, run) : d,
    );
  // a run moved to another thread (or out of any) leaves the conversation it was in
  for (const [key, data] of client.getQueriesData<ThreadRuns>({ queryKey: ['threads', 'runs'] })) {
    if (!data || key[2] === run.thread_id) continue;
    const next = dropRunFromThread(data, run.id);
    if (next !== data) client.setQueryData(key, next);
  }
  // a turn of an open conversation: in place at once; the thread's sums come from the server
  if (run.thread_id) {
    client.setQueryData<ThreadRuns>(threadRunsKey(run.thread_id), (d) =>
      d ? applyRunToThread(d, run) : d,
    );
    hooks.refreshThreads?.();
  }
  // a user's sums, like a thread's, come from the server
  if (run.user_id) hooks.refreshUsers?.();
  for (const [key, data] of client.getQueriesData<RunList>({ queryKey: ['runs', 'list'] })) {
    if (!data) continue;
    const view = key[2] as RunsView;
    const match = runMatches(run, viewFilters(view));
    if (match === undefined) {
      hooks.refreshSearches?.();
      continue;
    }
    let next: RunList;
    if (view.sort !== 'newest') {
      // a sorted page: its runs change in place, and the order comes from the server (a
      // run's cost and tokens grow as it runs), asked again now and then while runs change
      next = match ? replaceRunInList(data, run) : removeRunFromList(data, run);
      if (match || next !== data) hooks.refreshSearches?.();
    } else if (!match) {
      // it left the filter (a running run ended): out of the list, and the page refills
      next = removeRunFromList(data, run);
      if (next !== data && data.has_more) hooks.refreshSearches?.();
    } else if (view.page === 0) next = applyRunToList(data, run, PAGE_SIZE);
    else next = replaceRunInList(data, run);
    if (next !== data) client.setQueryData(key, next);
  }
}

/**
 * Feeds WebSocket updates into the query cache: the one place realtime data enters the
 * app. Updates are applied once per animation frame, so a burst renders once.
 */
export function connectLive(client: QueryClient): () => void {
  const refreshAgents = throttled(
    () => void client.invalidateQueries({ queryKey: agentsKey }),
    3000,
  );
  // a text search reads the runs until its page fills, over all of them for a rare word
  // (seconds of a reader thread on a large history): while the fleet is busy, an open
  // search asks again every 10 s, not every 2
  const refreshSearches = throttled(
    () => void client.invalidateQueries({ queryKey: ['runs', 'list'] }),
    10_000,
  );
  // a thread's sums change with each of its runs' updates: the open Threads list and thread
  // summary ask again every few seconds at most
  const refreshThreads = throttled(() => {
    void client.invalidateQueries({ queryKey: ['threads', 'list'] });
    void client.invalidateQueries({ queryKey: ['threads', 'one'] });
  }, 3000);
  // and so do a user's, over all its threads and runs
  const refreshUsers = throttled(() => {
    void client.invalidateQueries({ queryKey: ['users', 'list'] });
    void client.invalidateQueries({ queryKey: ['users', 'one'] });
  }, 3000);
  let queue: WsServerMessage[] = [];
  let scheduled = false;

  // the last state seen of each active run; an ended run is forgotten
  const lastStatus = new Map<string, RunStatus>();
  const stateChanged = (run: Run) => {
    const changed = lastStatus.get(run.id) !== run.status;
    if (isActive(run.status)) lastStatus.set(run.id, run.status);
    else lastStatus.delete(run.id);
    return changed;
  };
  // stats change when a run appears, starts or ends; a refetch every few seconds at most
  const refreshStats = throttled(
    () => void client.invalidateQueries({ queryKey: ['stats'] }),
    5000,
  );
  // the runs each worker holds change as runs are claimed, end or are released
  const refreshWorkers = throttled(
    () => void client.invalidateQueries({ queryKey: ['workers'] }),
    500,
  );
  // updates that came while the app was asking the server: an answer read before them
  // replaces what they were folded into (a first load lands where there was nothing to fold
  // them into), so they are folded again as each answer lands, until none is on its way
  const heardRuns = new Map<string, { run: Run; listed: boolean }>();
  const heardSteps = new Map<string, Step[]>();
  /** Runs deleted, by id, with their agent. */
  const heardDeleted = new Map<string, string>();
  // whether this frame's updates are kept for the answers on their way: asked once a frame,
  // as `isFetching` walks the whole query cache
  let remembering = false;
  const fetching = () => {
    if (client.isFetching() > 0) return true;
    heardRuns.clear();
    heardSteps.clear();
    heardDeleted.clear();
    return false;
  };
  const offFetched = client.getQueryCache().subscribe((event) => {
    if (event.type !== 'updated' || event.action.type !== 'success' || event.action.manual) return;
    for (const { run, listed } of heardRuns.values()) foldRun(client, run, { listed });
    // a step's updates carry no time: only the ones the answer lacks (a step it did not have
    // yet, an end it had not seen) are folded again, never an older state over a newer one
    for (const [runId, steps] of heardSteps)
      client.setQueriesData<RunWithSteps>({ queryKey: runDetailKey(runId) }, (d) => {
        if (!d) return d;
        const held = new Map(d.steps.map((step) => [step.id, step.status]));
        const missed = steps.filter((step) => {
          const status = held.get(step.id);
          return status === undefined || (status === 'running' && step.status !== 'running');
        });
        return missed.length > 0 ? applyStepsToRun(d, missed) : d;
      });
    for (const [id, agentId] of heardDeleted) unlist(id, agentId);
    fetching();
  });

  const applyRun = (run: Run, topic: string) => {
    heardDeleted.delete(run.id);
    if (remembering) {
      const held = heardRuns.get(run.id);
      if (!held || newerRun(held.run, run) === run)
        heardRuns.set(run.id, { run, listed: !topic.startsWith('run:') });
    }
    const changed = stateChanged(run);
    if (changed) {
      refreshStats();
      refreshWorkers();
    }
    foldRun(client, run, {
      refreshAgents,
      refreshSearches,
      refreshThreads,
      refreshUsers,
      stateChanged: changed,
      listed: !topic.startsWith('run:'),
    });
  };

  // a run deleted (by the API, the CLI, with its agent): out of every list it is in; its
  // page asks again and says it is gone
  const dropRun = (id: string, agentId: string) => {
    lastStatus.delete(id);
    heardRuns.delete(id);
    heardSteps.delete(id);
    if (remembering) heardDeleted.set(id, agentId);
    refreshStats();
    refreshAgents();
    unlist(id, agentId);
    refreshThreads();
    refreshUsers();
    void client.invalidateQueries({ queryKey: runDetailKey(id) });
  };

  // a deleted run out of every list it is in
  const unlist = (id: string, agentId: string) => {
    const fold = (key: readonly unknown[], data: RunList | undefined) => {
      if (!data) return;
      const next = dropRunFromList(data, id);
      if (next === data) return;
      client.setQueryData(key, next);
      // the page refills from the server
      if (data.has_more) void client.invalidateQueries({ queryKey: key, exact: true });
    };
    fold(agentRunsKey(agentId), client.getQueryData<RunList>(agentRunsKey(agentId)));
    for (const [key, data] of client.getQueriesData<RunList>({ queryKey: ['runs', 'list'] }))
      fold(key, data);
    // and out of its parent's sub-runs
    for (const [key, data] of client.getQueriesData<RunList>({ queryKey: ['runs', 'children'] }))
      fold(key, data);
    // and out of its thread's conversation, whose sums the server has anew
    for (const [key, data] of client.getQueriesData<ThreadRuns>({
      queryKey: ['threads', 'runs'],
    })) {
      const next = data && dropRunFromThread(data, id);
      if (next !== data) client.setQueryData(key, next);
    }
  };

  // a frame's steps of one run go into its page in one fold
  const applySteps = (runId: string, steps: Step[]) => {
    client.setQueriesData<RunWithSteps>({ queryKey: runDetailKey(runId) }, (d) =>
      d ? applyStepsToRun(d, steps) : d,
    );
  };

  const flush = () => {
    scheduled = false;
    const batch = queue;
    queue = [];
    const steps = new Map<string, Step[]>();
    remembering = fetching();
    for (const msg of batch) {
      if (msg.type === 'run_update') applyRun(msg.data, msg.topic);
      else if (msg.type === 'step_update') {
        if (remembering) {
          const heard = heardSteps.get(msg.data.run_id);
          if (heard) heard.push(msg.data);
          else heardSteps.set(msg.data.run_id, [msg.data]);
        }
        const list = steps.get(msg.data.run_id);
        if (list) list.push(msg.data);
        else steps.set(msg.data.run_id, [msg.data]);
      } else if (msg.type === 'run_deleted') dropRun(msg.data.id, msg.data.agent_id);
      else if (msg.type === 'agent_update') applyAgent(msg.data);
      else if (msg.type === 'agent_deleted')
        client.setQueryData<AgentSummary[]>(agentsKey, (list) =>
          list?.some((a) => a.id === msg.data.id) ? list.filter((a) => a.id !== msg.data.id) : list,
        );
    }
    // after the frame's run updates: a step never depends on its run's fields, and a run
    // deleted in this frame has no page left to fold them into
    for (const [runId, list] of steps) applySteps(runId, list);
  };

  // an agent's new settings (another tab, the CLI): into the list in place; an agent the list
  // does not have yet is read with its runs and counts
  const applyAgent = (agent: Agent) => {
    const list = client.getQueryData<AgentSummary[]>(agentsKey);
    if (!list) return;
    if (list.some((a) => a.id === agent.id))
      client.setQueryData(agentsKey, applyAgentToSummaries(list, agent));
    else refreshAgents();
  };

  const offMessage = realtime.onMessage((msg) => {
    if (
      msg.type !== 'run_update' &&
      msg.type !== 'step_update' &&
      msg.type !== 'run_deleted' &&
      msg.type !== 'agent_update' &&
      msg.type !== 'agent_deleted'
    )
      return;
    queue.push(msg);
    if (scheduled) return;
    scheduled = true;
    // a hidden tab gets no animation frames; a timer keeps the cache current anyway
    if (document.hidden) setTimeout(flush, 100);
    else requestAnimationFrame(flush);
  });
  // updates may have been missed while disconnected: refetch what is on screen
  const offReconnect = realtime.onReconnect(() => void client.invalidateQueries());
  // data fetched before the subscription was confirmed may have missed an update: one read
  // after the subscribe was sent, but served before the server took it, did (a page's first
  // load, whose data came while its socket still connected)
  const offSubscribed = realtime.onSubscribed((topics, confirmedAt) => {
    for (const topic of topics) {
      for (const queryKey of keysForTopic(topic)) {
        for (const q of client.getQueryCache().findAll({ queryKey })) {
          if (q.state.dataUpdatedAt > 0 && q.state.dataUpdatedAt < confirmedAt) {
            void client.invalidateQueries({ queryKey: q.queryKey, exact: true });
          }
        }
      }
    }
  });
  realtime.start();
  return () => {
    offMessage();
    offReconnect();
    offSubscribed();
    offFetched();
    realtime.stop();
  };
}

/** Watches topics while the calling component is mounted. */
export function useTopics(topics: readonly string[]): void {
  const key = topics.join('\n');
  useEffect(() => {
    const offs = key ? key.split('\n').map((t) => realtime.subscribe(t)) : [];
    return () => offs.forEach((off) => off());
  }, [key]);
}

export function useConnectionState() {
  return useSyncExternalStore(realtime.onState, realtime.getState);
}
