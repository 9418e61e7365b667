// One websocket stream that keeps itself open: it reconnects with jittered exponential backoff,
// and before retrying a connection that never opened, asks whether the session is still valid
// (the upgrade is refused with 401 once the access token expired or the session ended). What it
// fetches on every open (what was missed while it was down) is tried again while it fails.

import { backoffDelay, RetryingFetch } from './retry.js';

const STABLE_AFTER_MS = 5000; // a connection open this long resets the backoff

/** The last frames in and out of every stream, kept only when turned on (test hooks, debugging). */
export const frameLog = { enabled: false, entries: [] };

function logFrame(path, direction, frame) {
  if (!frameLog.enabled) return;
  frameLog.entries.push({ at: Date.now(), path, direction, frame });
  if (frameLog.entries.length > 500) frameLog.entries.shift();
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
    this.fetches = []; // RetryingFetch: run on every open, after handlers.onOpen
    this.onOnline = () => this.reconnectNow();
  }

  /**
   * Adds something to fetch each time the stream opens (what was missed while it was down), tried
   * again with backoff while it fails and the stream stays open. Returns it: `later()` asks for
   * one more try (after a related fetch failed, say).
   */
  fetchOnOpen(what, fetch) {
    const retrying = new RetryingFetch(what, fetch, () => this.isOpen);
    this.fetches.push(retrying);
    return retrying;
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

  cancelFetches() {
    for (const retrying of this.fetches) retrying.cancel();
  }

  /** Closes for good (sign-out): no reconnect. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.cancelFetches();
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
      for (const retrying of this.fetches) retrying.run();
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
      this.cancelFetches();
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
