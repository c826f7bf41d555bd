// The mail stack helpers live in scripts/lib so that the demo uses the same code.
export * from '../../scripts/lib/mailstack.mjs';
import { ENDPOINTS, removeContainers, TEST_MARKER, useMailPorts } from '../../scripts/lib/mailstack.mjs';
import { freePorts } from './ports.js';

// Each test file (a process of its own) gets free ports for the mail containers on host networking.
useMailPorts(await freePorts(Object.keys(ENDPOINTS).length));

/** Removes this run's containers, never another run's. */
export const removeTestContainers = (): Promise<void> => removeContainers(TEST_MARKER);
