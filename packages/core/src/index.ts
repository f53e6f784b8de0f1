export * from './enums.js';
export * from './status.js';
export * from './schemas.js';
export * from './cost.js';
export * from './time.js';
export * from './timeline.js';
export * from './ids.js';
export * from './truncated.js';
