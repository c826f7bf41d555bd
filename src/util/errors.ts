export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An error whose message is meant for the mail admin as it stands. */
export class UserError extends Error {
  override name = 'UserError';
}
