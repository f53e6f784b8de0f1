import type { AppContext } from '../context.js';

/** Ends runs whose lease lapsed or whose deadline passed, and forces overdue cancels. */
export function startSweeper(_ctx: AppContext): void {}
