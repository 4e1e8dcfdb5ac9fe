/**
 * Bytes of NATS's `max_payload` kept for what a message adds to the request it comes from: the
 * envelope of the event a command appends (ids, positions, metadata, computed token counts and costs)
 * and the fields of the reply around the data it echoes. Measured: a 994 KB turn of 50 responses
 * makes a `TurnLogged` 10 KB larger than its request; 64 KiB leaves room for more.
 */
export const NATS_PAYLOAD_RESERVE_BYTES = 64 * 1024;

/**
 * A message larger than the NATS server carries (`max_payload` of its INFO, 1 MiB by default): it can
 * never be delivered, however often it is retried. `sizeBytes` is the message's size, `limitBytes`
 * the largest size allowed for it.
 */
export class PayloadTooLargeError extends Error {
  constructor(
    readonly what: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(`${what} is ${sizeBytes} bytes; NATS carries at most ${limitBytes} bytes (max_payload)`);
    this.name = 'PayloadTooLargeError';
  }
}
