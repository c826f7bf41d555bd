/** Makes an HTTP-01 key authorization reachable at http://<domain>/.well-known/acme-challenge/<token>. */
export interface Http01Solver {
  /** Called once before an order's first challenge. */
  begin(): Promise<void>;
  present(token: string, keyAuthorization: string): Promise<void>;
  remove(token: string): Promise<void>;
  /** Called once after the order, whatever happened. */
  end(): Promise<void>;
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
