import { queryOptions } from '@tanstack/react-query';
import type { PostScoreBody, Score, ScoreList } from '@runlog/core';
import { api } from '../../lib/api';

export const scoresKey = (runId: string) => ['runs', 'scores', runId] as const;

/**
 * A run's scores, oldest first. The run's page asks again when the run's `scores` summary
 * changes (a `run_update`), and folds in what its own buttons send.
 */
export const runScoresQuery = (runId: string) =>
  queryOptions({
    queryKey: scoresKey(runId),
    queryFn: ({ signal }) =>
      api<ScoreList>('GET', `/runs/${encodeURIComponent(runId)}/scores`, { signal }),
  });

/**
 * The id of the dashboard's 👍/👎 on a run for one API key: the same id replaces, so a
 * user changing their mind keeps one score. A session the server names no key for shares one.
 * @example feedbackScoreId('k_01h') // 'dashboard-feedback-k_01h'
 */
export function feedbackScoreId(keyId: string | undefined): string {
  return keyId ? `dashboard-feedback-${keyId}` : 'dashboard-feedback';
}

export const postScore = (runId: string, body: PostScoreBody) =>
  api<Score>('POST', `/runs/${encodeURIComponent(runId)}/scores`, { body });

export const deleteScore = (runId: string, scoreId: string) =>
  api<void>('DELETE', `/runs/${encodeURIComponent(runId)}/scores/${encodeURIComponent(scoreId)}`);

/** A score into a cached list: in place of the one with its id, else last (oldest first). */
export function upsertScore(list: ScoreList, score: Score): ScoreList {
  const i = list.scores.findIndex((s) => s.id === score.id);
  if (i < 0) return { scores: [...list.scores, score] };
  const scores = list.scores.slice();
  scores[i] = score;
  return { scores };
}

/** A deleted score out of a cached list. */
export function removeScore(list: ScoreList, scoreId: string): ScoreList {
  return { scores: list.scores.filter((s) => s.id !== scoreId) };
}
