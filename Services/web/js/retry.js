// When to try again: the one backoff, the one notion of a transient failure and the one retrying
// fetch that the streams' reconnects, what they fetch on every open, and the start-up's session
// check share.

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

/**
 * Something fetched again while it fails for a transient reason, with backoff, as long as it is
 * wanted: what a stream fetches each time it opens (`Stream.fetchOnOpen`; wanted while the stream
 * is open), and the start-up's session check (wanted until signed in). One fetch runs at a time:
 * one asked for meanwhile runs when it ends, so the newest answer is the one that stays. The fetch
 * is given `isCurrent()`, false once `cancel()` was called, to leave a stale answer unused. A
 * server that answered with a Retry-After is not asked again before that time, whoever asks: a
 * fetch asked for meanwhile, or the stream opening again after a drop.
 */
export class RetryingFetch {
  constructor(what, fetch, isWanted) {
    this.what = what; // for the console, e.g. 'catch-up'
    this.fetch = fetch;
    this.isWanted = isWanted; // whether to go on trying
    this.timer = null;
    this.failures = 0; // since the last fetch that went through
    this.running = false;
    this.again = false; // asked for while running: once more when it ends
    this.generation = 0; // moved on by cancel(): a fetch under way then schedules nothing
    this.notBefore = 0; // performance.now() before which the server asked not to be asked (Retry-After)
  }

  /** Fetches now, or once more when the fetch under way ends. Never rejects. */
  async run() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.running) {
      this.again = true;
      return;
    }
    const wait = this.notBefore - performance.now();
    if (wait > 0) {
      this.schedule(wait); // not a failure: no longer backoff for it
      return;
    }
    const generation = this.generation;
    this.running = true;
    let failure = null;
    try {
      await this.fetch(() => generation === this.generation);
    } catch (error) {
      failure = error;
    }
    this.running = false;
    this.noteRetryAfter(failure);
    if (this.again) {
      // Asked for again meanwhile: now, or once the server's Retry-After has passed.
      this.again = false;
      if (this.isWanted()) await this.run();
    } else if (generation !== this.generation) {
      // cancelled meanwhile: nothing follows
    } else if (!failure) {
      this.failures = 0;
    } else if (isTransient(failure)) {
      console.warn(`${this.what} failed; trying again`, failure);
      this.later();
    } else {
      console.warn(`${this.what} failed`, failure);
    }
  }

  /**
   * One more try: after the backoff (or the server's Retry-After, if later), or when the fetch
   * under way ends; none if one is pending or it is not wanted (a stream's next open runs every
   * fetch). `failure`: what failed outside this fetch and asked for it (a gap's own fetch), whose
   * Retry-After holds too.
   */
  later(failure = null) {
    this.noteRetryAfter(failure);
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer || !this.isWanted()) return;
    this.schedule(Math.max(backoffDelay(this.failures), this.notBefore - performance.now()));
    this.failures += 1;
  }

  /** A run in `delayMs`, unless cancelled meanwhile or no longer wanted then. */
  schedule(delayMs) {
    const generation = this.generation;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (generation === this.generation && this.isWanted()) this.run();
    }, delayMs);
  }

  /** A transient failure with a Retry-After: nobody asks again before that time. */
  noteRetryAfter(failure) {
    if (!failure?.retryAfter || !isTransient(failure)) return;
    console.warn(`${this.what}: asked to wait ${failure.retryAfter} s`, failure);
    this.notBefore = Math.max(this.notBefore, performance.now() + failure.retryAfter * 1000);
  }

  /**
   * Stops trying: a fetch under way ends (`isCurrent()` false), and nothing follows it. A
   * Retry-After still holds for the next `run()`.
   */
  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
    this.generation += 1;
    this.again = false;
    this.failures = 0;
  }
}
