import { DomainError } from '@threadline/platform';

/**
 * Awaits `promise` and asserts it rejected with a `DomainError` of `code` (a command or query refused
 * over NATS arrives as one, rebuilt from its error reply). Returns the error for further checks;
 * fails the test when the promise resolved or rejected with anything else.
 */
export async function expectDomainError(promise: Promise<unknown>, code: string): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
  return error as DomainError;
}
