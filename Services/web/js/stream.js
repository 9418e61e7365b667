// One websocket stream that keeps itself open: it reconnects with jittered exponential backoff,
// and before retrying a connection that never opened, asks whether the session is still valid
// (the upgrade is refused with 401 once the access token expired or the session ended).

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;
const STABLE_AFTER_MS = 5000; // a connection open this long resets the backoff

/** The last frames in and out of every stream, kept only when turned on (test hooks, debugging). */
export const frameLog = { enabled: false, entries: [] };

function logFrame(path, direction, frame) {
  if (!frameLog.enabled) return;
  frameLog.entries.push({ at: Date.now(), path, direction, frame });
  if (frameLog.entries.length > 500) frameLog.entries.shift();
}

/**
 * How long to wait before try `attempt` (from 0) of something that keeps failing: jittered
 * exponential backoff ("equal jitter"), from BASE_DELAY_MS up to MAX_DELAY_MS.
 */
function backoffDelay(attempt) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * What a stream fetches when it (re)connects, such as what was missed while it was down. While the
 * fetch fails it is tried again with backoff as long as the stream stays open, so a service that is
 * unreachable for a moment does not leave the page behind until the next reconnect.
 */
export class RetryingFetch {
  /**
   * @param {string} what for the console, e.g. 'catch-up'
   * @param {() => Promise<void>} fetch
   * @param {() => boolean} isWanted whether to go on trying (the stream is open)
   */
  constructor(what, fetch, isWanted) {
    this.what = what;
    this.fetch = fetch;
    this.isWanted = isWanted;
    this.timer = null;
    this.failures = 0; // since the last fetch that went through
  }

  /** Fetches now, in place of a try pending; if that fails, tries again later. Never rejects. */
  async run() {
    clearTimeout(this.timer);
    this.timer = null;
    try {
      await this.fetch();
      this.failures = 0;
    } catch (error) {
      console.warn(`${this.what} failed; trying again`, error);
      this.later();
    }
  }

  /** One try after the backoff, unless one is pending or the stream closed (its reconnect runs it). */
  later() {
    if (this.timer || !this.isWanted()) return;
    this.timer = setTimeout(() => this.run(), backoffDelay(this.failures));
    this.failures += 1;
  }

  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
    this.failures = 0;
  }
}

export class Stream {
  /**
   * @param {string} path e.g. '/ws/chat'
   * @param {{onOpen?: Function, onFrame: Function, onState: Function, checkSession?: Function}} handlers
   */
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.everOpened = false;
    this.onOnline = () => this.reconnectNow();
  }

  get url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${this.path}`;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  /** Closes for good (sign-out): no reconnect. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'signed out');
    this.handlers.onState('closed');
  }

  /**
   * Closes the current connection as a network failure would, and stays down for at least
   * `holdMs` (an outage of that length). Used by the browser tests.
   */
  drop(holdMs = 0) {
    this.heldUntil = Date.now() + holdMs;
    if (this.socket) this.socket.close(4000, 'dropped');
  }

  /** Ends an outage begun by `drop` at once and reconnects (the browser tests' cue). */
  release() {
    this.heldUntil = 0;
    this.reconnectNow();
  }

  reconnectNow() {
    if (this.stopped || this.socket || (this.heldUntil || 0) > Date.now()) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    logFrame(this.path, 'out', frame);
    return true;
  }

  connect() {
    this.timer = null;
    this.handlers.onState(this.attempt === 0 && !this.everOpened ? 'connecting' : 'reconnecting');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.retry(false);
      return;
    }
    this.socket = socket;
    let openedAt = 0;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      openedAt = Date.now();
      this.everOpened = true;
      logFrame(this.path, 'open', null);
      this.handlers.onState('open');
      this.handlers.onOpen?.();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket || typeof event.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      logFrame(this.path, 'in', frame);
      this.handlers.onFrame(frame);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      logFrame(this.path, 'close', null);
      if (this.stopped) return;
      if (openedAt && Date.now() - openedAt >= STABLE_AFTER_MS) this.attempt = 0;
      this.retry(openedAt === 0);
    });
  }

  retry(neverOpened) {
    this.handlers.onState('reconnecting');
    const delay = Math.max(backoffDelay(this.attempt), (this.heldUntil || 0) - Date.now());
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (neverOpened && this.handlers.checkSession) {
        const valid = await this.handlers.checkSession();
        if (!valid || this.stopped) return;
      }
      if (!this.stopped && !this.socket) this.connect();
    }, delay);
  }
}
