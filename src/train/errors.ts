/**
 * Errors of the train layer that its callers treat specially.
 */

/** A value the user gave (a flag, an environment variable) is invalid; the CLI adds its usage hint and exits with 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
