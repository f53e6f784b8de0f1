import type { AppContext } from '../context.js';

/** On PostgreSQL, relays hub events between server instances over LISTEN/NOTIFY. */
export async function startHubBridge(_ctx: AppContext): Promise<void> {}
