// The mail stack helpers live in scripts/lib so that the demo uses the same code.
export * from '../../scripts/lib/mailstack.mjs';
import { removeContainers } from '../../scripts/lib/mailstack.mjs';

export const removeTestContainers = (): Promise<void> => removeContainers('mailcerts.test=1');
