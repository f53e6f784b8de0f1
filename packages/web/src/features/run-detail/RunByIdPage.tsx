import { useQuery } from '@tanstack/react-query';
import { Link, Navigate, useParams } from 'react-router-dom';
import { ApiError } from '../../lib/api';
import { Empty, ErrorBox, Loading } from '../../components/States';
import { shortId } from '../../lib/format';
import { useDocumentTitle } from '../../app/page';
import { runPath } from '../runs/RunActions';
import { runQuery } from './runDetail.queries';

/**
 * `/runs/:runId`: a run known by its id alone (as the CLI, the API and an agent's logs print
 * it, and as the API's own path names it) opens at its agent's address.
 */
export function RunByIdPage() {
  const { runId = '' } = useParams();
  const run = useQuery(runQuery(runId));
  const notFound = run.error instanceof ApiError && run.error.status === 404;
  useDocumentTitle(notFound ? 'Run not found' : `Run ${shortId(runId)}`);
  if (run.data) return <Navigate to={runPath(run.data)} replace />;
  if (notFound) {
    return (
      <Empty title="Run not found" heading>
        This project has no run with this id: it may have been deleted, or the link may be wrong or
        point to another project&apos;s run. <Link to="/runs">See all runs</Link>
      </Empty>
    );
  }
  if (run.isError) return <ErrorBox error={run.error} onRetry={() => void run.refetch()} />;
  return <Loading label="Loading run…" rows={8} />;
}
