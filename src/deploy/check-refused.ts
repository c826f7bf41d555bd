/**
 * How a reload that a server's own check refused begins its error (`postfix check`, `doveconf -n`),
 * so that the pass can tell it from a failed reload (MC_RELOAD_CHECK). In a file of its own: the
 * pass imports it, and must not load the deployers (and dockerode) by doing so.
 */
export const CHECK_REFUSED = 'validation failed, not reloaded';
