import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';

// Being built: see the issue that owns this feature.
export async function runsRoutes(_app: FastifyInstance, _ctx: AppContext): Promise<void> {}
