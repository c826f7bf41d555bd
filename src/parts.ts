import type { ConfigParts } from './config/parts.js';
import { DEPLOY_MODES } from './deploy/modes/index.js';
import { CERTIFICATE_SOURCES } from './obtain/sources/index.js';

/**
 * The registries of the parts that bring settings of their own, handed to the configuration
 * (loadConfig's `parts`), which sits below them and does not import them. Adding a source or a
 * mode is a line in its own registry (obtain/sources/index.ts, deploy/modes/index.ts), not here.
 */
export const CONFIG_PARTS: ConfigParts = { sources: CERTIFICATE_SOURCES, modes: DEPLOY_MODES };
