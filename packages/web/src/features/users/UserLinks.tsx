import { Link } from 'react-router-dom';
import { runsPath } from '../runs/RunsPage';
import { userPath } from './users.queries';

/** A user id linked to its page, with "as runs" beside it: the Runs page filtered by it. */
export function UserLinks({ userId }: { userId: string }) {
  return (
    <>
      <Link to={userPath(userId)} title="The user: its runs, threads and cost">
        {userId}
      </Link>{' '}
      <Link
        className="thread-runs-link"
        to={runsPath({ user_id: userId })}
        aria-label="All runs of this user"
        title="All runs of this user"
      >
        as runs
      </Link>
    </>
  );
}
