// Live /ws connection with ping, dead-link detection and capped exponential reconnect.

export const CONNECTED = 'Connected';
export const RECONNECTING = 'Reconnecting';
export const DISCONNECTED = 'Disconnected';

const FIRST_DELAY_MS = 1000; // first retry after 1 s, doubling
const MAX_DELAY_MS = 30000; // ...up to 30 s between tries
const MAX_ATTEMPTS = 12; // about four minutes of trying, then give up (Disconnected)
const PING_EVERY_MS = 30000; // {"type":"ping"} cadence
const SILENCE_LIMIT_MS = 75000; // no frame (not even pong) for this long: the link is dead

/** Keeps one WebSocket to /ws open and reports its state: Connected, Reconnecting or Disconnected. */
export class LiveSocket {
  /** options: keyFor() -> key, onFrame(frame), onState(state), onOpen(isReconnect), onFailedOpen(). */
  constructor(options) {
    this.options = options;
    this.socket = null;
    this.state = DISCONNECTED;
    this.attempts = 0;
    this.everOpened = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.running = false;
    this.gaveUp = false; // true once MAX_ATTEMPTS retries failed
  }

  /** Connect now (or reconnect immediately after giving up). */
  start() {
    this.running = true;
    this.gaveUp = false;
    this.attempts = 0;
    clearTimeout(this.retryTimer);
    if (!this.socket) this.connect();
  }

  /** Close for good (no key, key rejected, page leaving). */
  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setState(DISCONNECTED);
  }

  /** The ws: or wss: URL for this page, carrying the key. */
  url() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const key = encodeURIComponent(this.options.keyFor() || '');
    return `${scheme}//${window.location.host}/ws?apikey=${key}`;
  }

  /** Open one socket and wire its events. */
  connect() {
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      this.attempts = 0;
      this.lastFrameAt = Date.now();
      const isReconnect = this.everOpened;
      this.everOpened = true;
      this.setState(CONNECTED);
      this.startPing();
      this.options.onOpen(isReconnect);
    });
    socket.addEventListener('message', (event) => {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === 'string') this.options.onFrame(frame);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.teardown();
      if (!this.running) return;
      if (!opened) this.options.onFailedOpen();
      if (this.running) this.scheduleRetry();
    });
  }

  /** Wait 1, 2, 4 ... 30 s and try again; give up after MAX_ATTEMPTS. */
  scheduleRetry() {
    if (this.attempts >= MAX_ATTEMPTS) {
      this.running = false;
      this.gaveUp = true;
      this.setState(DISCONNECTED);
      return;
    }
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempts);
    this.attempts += 1;
    this.setState(RECONNECTING);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.running && !this.socket) this.connect();
    }, delay);
  }

  /** Send pings and drop a link that has gone silent. */
  startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        this.socket.close();
        return;
      }
      this.socket.send(JSON.stringify({ type: 'ping' }));
    }, PING_EVERY_MS);
  }

  /** Drop the current socket and its timers. */
  teardown() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
  }

  /** Record and announce a state change. */
  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.options.onState(state);
  }
}
