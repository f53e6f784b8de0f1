import type { AppContext } from '../context.js';

/** Deletes runs that ended more than the project's `retention_days` ago, in small batches. */
export function startRetention(_ctx: AppContext): void {}
