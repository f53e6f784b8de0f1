import type { AppContext } from '../context.js';

/** Starts the control plane's background jobs (sweeps, scheduler, retention). */
export function startBackground(_ctx: AppContext): void {}
