// The HTTP side of the public contract. Every call goes through `request`, which
// turns the error shape {"error":{"code","message","fields"?}} into an ApiError and, when the
// access token has expired (401), refreshes the session once and retries.

export class ApiError extends Error {
  constructor(status, code, message, fields = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

const sessionEndedListeners = new Set();
/** Called when auth refuses to renew the session (signed out elsewhere, refresh token revoked). */
export function onSessionEnded(listener) {
  sessionEndedListeners.add(listener);
  return () => sessionEndedListeners.delete(listener);
}

/** No answer, or an answer cut off: a transient error (status 0). */
function unreachable() {
  return new ApiError(0, 'network_error', 'Cannot reach SwiftChat. Check your connection and try again.');
}

async function send(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw unreachable();
  }
}

async function parse(response) {
  if (response.status === 204) return null;
  let text;
  try {
    text = await response.text();
  } catch {
    throw unreachable();
  }
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (response.ok) return data;
  const error = data && data.error;
  const retryAfter = retryAfterOf(response);
  if (error && typeof error.code === 'string') {
    throw new ApiError(response.status, error.code, error.message || error.code, error.fields || null, retryAfter);
  }
  throw new ApiError(response.status, 'http_' + response.status, `The server answered ${response.status}.`, null, retryAfter);
}

// One refresh at a time, across this tab's callers and across tabs (refresh tokens rotate, and a
// reused one revokes the whole session, so two tabs must never refresh with the same token).
// Resolves to 'renewed', 'ended' (auth refused the refresh token, or refuses this page's origin:
// sign in again) or an ApiError saying the session could not be renewed for now (auth could not be
// reached, failed or asked to wait: the session may well be fine, so it is not ended).
let refreshing = null;
export function refreshSession() {
  if (!refreshing) {
    const run = async () => {
      // Another tab may have refreshed while we waited for the lock: the cookie is already new.
      const probe = await send('GET', '/api/auth/currentuser');
      if (probe.ok) return 'renewed';
      const response = await send('POST', '/api/auth/refresh');
      if (response.ok) return 'renewed';
      if (response.status === 401 || response.status === 403) return 'ended';
      return renewalUnavailable(response);
    };
    const locked = navigator.locks ? navigator.locks.request('swiftchat-refresh', run) : run();
    refreshing = locked.catch(() => renewalUnavailable()).finally(() => { refreshing = null; });
  }
  return refreshing;
}

/**
 * The session could not be renewed for now: a transient error that callers try again, 429 with
 * auth's `Retry-After` when auth asked to wait, 503 otherwise (no answer, or auth failed).
 */
function renewalUnavailable(response = null) {
  const retryAfter = retryAfterOf(response);
  if (response?.status === 429) {
    return new ApiError(429, 'rate_limited', 'SwiftChat asked to wait before it renews your session.', null, retryAfter);
  }
  return new ApiError(503, 'service_unavailable', 'Cannot reach SwiftChat to renew your session. Please try again in a moment.',
    null, retryAfter);
}

/** An answer's `Retry-After`, in seconds, or null. */
function retryAfterOf(response) {
  return Number(response?.headers.get('Retry-After')) || null;
}

export async function request(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401 && !path.startsWith('/api/auth/')) {
    const renewal = await refreshSession();
    if (renewal instanceof ApiError) throw renewal;
    if (renewal === 'renewed') response = await send(method, path, body);
    if (response.status === 401) sessionEndedListeners.forEach((listener) => listener());
  }
  return parse(response);
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? '?' + text : '';
};
const id = encodeURIComponent;

export const auth = {
  signUp: (username, email, password) => request('POST', '/api/auth/signup', { username, email, password }),
  signIn: (login, password) => request('POST', '/api/auth/signin', { login, password }),
  signOut: () => request('POST', '/api/auth/signout'),
  /** The signed-in user, refreshing the session once if needed; null when there is no session. */
  async currentUser() {
    let response = await send('GET', '/api/auth/currentuser');
    if (response.status === 401) {
      const renewal = await refreshSession();
      if (renewal instanceof ApiError) throw renewal;
      if (renewal === 'renewed') response = await send('GET', '/api/auth/currentuser');
    }
    if (response.status === 401) return null;
    return (await parse(response)).user;
  },
};

export const users = {
  search: (query, cursor) => request('GET', '/api/users' + q({ query, cursor, limit: 20 })),
  get: (userId) => request('GET', `/api/users/${id(userId)}`),
  contacts: () => request('GET', '/api/users/me/contacts'),
  addContact: (userId) => request('PUT', `/api/users/me/contacts/${id(userId)}`),
  removeContact: (userId) => request('DELETE', `/api/users/me/contacts/${id(userId)}`),
};

export const conversations = {
  list: () => request('GET', '/api/conversations'),
  get: (conversationId) => request('GET', `/api/conversations/${id(conversationId)}`),
  openDirect: (userId) => request('POST', '/api/conversations', { type: 'direct', userId }),
  createGroup: (name, memberIds) => request('POST', '/api/conversations', { type: 'group', name, memberIds }),
  rename: (conversationId, name) => request('PATCH', `/api/conversations/${id(conversationId)}`, { name }),
  addMember: (conversationId, userId) => request('POST', `/api/conversations/${id(conversationId)}/members`, { userId }),
  removeMember: (conversationId, userId) =>
    request('DELETE', `/api/conversations/${id(conversationId)}/members/${id(userId)}`),
  setRole: (conversationId, userId, role) =>
    request('PATCH', `/api/conversations/${id(conversationId)}/members/${id(userId)}`, { role }),
  messages: (conversationId, { after, before, limit = 50 } = {}) =>
    request('GET', `/api/conversations/${id(conversationId)}/messages` + q({ after, before, limit })),
};

export const notifications = {
  list: ({ unread, cursor, limit = 30 } = {}) =>
    request('GET', '/api/notifications' + q({ unread: unread ? 'true' : undefined, cursor, limit })),
  markRead: (notificationId) => request('POST', `/api/notifications/${id(notificationId)}/read`),
  markAllRead: () => request('POST', '/api/notifications/read-all'),
};

/** A message for people: the server's own text, or what a status means. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong. Please try again.';
  if (error.status === 429) {
    return error.retryAfter ? `${error.message} Try again in ${error.retryAfter} s.` : error.message;
  }
  if (error.status >= 500 && error.status !== 503) return 'The server had a problem. Please try again.';
  return error.message;
}
