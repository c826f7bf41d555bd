import * as z from 'zod/mini';
import { duration } from '../fields.js';

/**
 * The central variables of the `schedule` group: when mailcerts looks again.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const scheduleEnv = () => ({
  /**
   * Time between renewal checks (±5% random jitter), e.g. `90m`, `1d`.
   * @group schedule
   * @default 12h
   */
  RENEW_CHECK_INTERVAL: z._default(duration(10_000, 7 * 86_400_000, '12h'), 43_200_000),
});
