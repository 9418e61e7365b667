// When to try again: the one backoff and the one notion of a transient failure that the streams'
// reconnects, what they fetch on every open, and the start-up's session check share.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;

/**
 * How long to wait before try `attempt` (from 0) of something that keeps failing: jittered
 * exponential backoff ("equal jitter"), from BASE_DELAY_MS up to MAX_DELAY_MS.
 */
export function backoffDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Failures worth another try: no answer, a timeout, too many requests, or the server's fault. */
export function isTransient(error) {
  const status = error?.status;
  return typeof status === 'number' && (status === 0 || status === 408 || status === 429 || status >= 500);
}
