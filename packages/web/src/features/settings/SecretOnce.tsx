import type { ReactNode } from 'react';
import { copyText } from '../../components/Toasts';

/**
 * A secret shown once, after it was made (an API key, a webhook's signing secret): what it is
 * for, the value, Copy and Done. Done hides it; nothing shows it again.
 */
export function SecretOnce({
  children,
  value,
  testId,
  copied,
  onDone,
}: {
  /** What to do with it, after "Copy … now." */
  children: ReactNode;
  value: string;
  testId: string;
  /** The toast once copied: "Key copied". */
  copied: string;
  onDone: () => void;
}) {
  return (
    <div className="secret" role="alert">
      <p>{children}</p>
      <div className="secret-row">
        <code className="mono" data-testid={testId}>
          {value}
        </code>
        {/* over plain http to another host there is no clipboard API: it says so, not nothing */}
        <button
          type="button"
          className="btn btn-small"
          onClick={() => void copyText(value, copied)}
        >
          Copy
        </button>
        <button type="button" className="btn btn-small btn-ghost" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
