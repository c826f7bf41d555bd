import { isIP } from 'node:net';
import * as z from 'zod/mini';
import { absolutePath, port } from '../fields.js';

/**
 * The central variables of the `http01` group: a token served on port 80 of each name.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const http01Env = () => ({
  /**
   * `standalone`: mailcerts' own listener. `webroot`: files for the web server that owns port 80.
   * @group http01
   * @default standalone
   */
  HTTP01_MODE: z._default(
    z.enum(['standalone', 'webroot'], { error: () => 'use standalone or webroot' }),
    'standalone',
  ),
  /**
   * Port of the standalone listener. Map the host's port 80 to it.
   * @group http01
   * @default 80
   */
  HTTP01_PORT: z._default(port, 80),
  /**
   * Address of the standalone listener.
   * @group http01
   * @default all interfaces, IPv4 and IPv6
   * @values an IP address
   */
  HTTP01_ADDRESS: z.optional(
    z
      .string()
      .check(
        z.refine((s) => isIP(s) !== 0, 'use an IP address such as 0.0.0.0 or ::; leave it unset for all interfaces'),
      ),
  ),
  /**
   * Document root for `webroot` mode; tokens go into `.well-known/acme-challenge/`. Required with
   * `HTTP01_MODE=webroot`.
   * @group http01
   * @default none
   * @values an absolute path
   */
  HTTP01_WEBROOT: z.optional(absolutePath("use an absolute path, the web server's document root")),
});
