// SwiftChat in the browser: restores the session, then wires the state, both streams and views.
import * as api from './api.js';
import * as store from './state.js';
import * as chat from './chat.js';
import * as notify from './notify.js';
import { renderAuth, setAuthNotice } from './views/auth.js';
import { renderShell } from './views/shell.js';
import { connectionBanner, clearBanner } from './views/banner.js';
import { frameLog } from './stream.js';
import { isTransient, RetryingFetch } from './retry.js';

const { state } = store;
const root = document.getElementById('app');
const banner = document.getElementById('banner');
const tabs = 'BroadcastChannel' in window ? new BroadcastChannel('swiftchat-session') : null;
let signedIn = false;
// The start-up's session check, asked again while auth cannot answer for now, until signed in.
const sessionCheck = new RetryingFetch('session check', whoIsSignedIn, () => !signedIn);

function boot() {
  sessionCheck.run();
}

/**
 * Asks auth who is signed in. When auth cannot answer for now, the sign-in screen says so and
 * `sessionCheck` asks again with backoff: a session that is still good then carries on by itself. A
 * sign-in screen already shown only has its notice changed, so what is typed stays. An answer that
 * comes after the page signed in or out meanwhile (`isCurrent()` false) is left unused.
 */
async function whoIsSignedIn(isCurrent) {
  let user;
  try {
    user = await api.auth.currentUser();
  } catch (error) {
    // Asked again only for a transient failure: then say so, not the gateway's own words.
    if (isCurrent()) showSignIn(isTransient(error) ? retryNotice(error) : api.describeError(error));
    throw error;
  }
  if (!isCurrent()) return;
  if (user) enter(user);
  else showSignIn(null);
}

function retryNotice(error) {
  if (error.status === 429) return 'SwiftChat asked to wait a moment. Trying again…';
  return 'Cannot reach SwiftChat right now. Trying again…';
}

function showSignIn(notice) {
  if (!setAuthNotice(root, notice)) renderAuth(root, { notice, onSignedIn: enter });
}

function enter(user) {
  sessionCheck.cancel();
  if (signedIn) leaveStreams();
  signedIn = true;
  store.clearListeners();
  store.reset(user);
  connectionBanner(banner);
  renderShell(root, { onSignOut: signOut, onMessagePerson: messagePerson, navigate });
  store.on('conversations', updateTitle);
  chat.startChat({ checkSession });
  notify.startNotifications({ checkSession });
  tabs?.postMessage({ type: 'signed-in' });
  route();
}

function leaveStreams() {
  chat.stopChat();
  notify.stopNotifications();
}

function leave(notice) {
  sessionCheck.cancel();
  leaveStreams();
  signedIn = false;
  store.clearListeners();
  store.reset(null);
  clearBanner(banner);
  document.title = 'SwiftChat';
  if (location.hash) history.replaceState(null, '', location.pathname);
  renderAuth(root, { notice, onSignedIn: enter });
}

async function signOut() {
  leaveStreams(); // both streams close before the session is revoked
  try {
    await api.auth.signOut();
  } catch (error) {
    console.warn('signout', error);
  }
  chat.clearOutbox();
  tabs?.postMessage({ type: 'signed-out' });
  leave('You signed out.');
}

function sessionEnded() {
  if (!signedIn) return;
  leave('Your session has ended. Please sign in again.');
}
api.onSessionEnded(sessionEnded);

/** For a stream whose connection failed: is the session still good (refreshing it if needed)? */
async function checkSession() {
  try {
    if (await api.auth.currentUser()) return true;
    sessionEnded();
    return false;
  } catch {
    return true; // the network or auth is down: keep retrying
  }
}

tabs?.addEventListener('message', (event) => {
  if (event.data?.type === 'signed-out' && signedIn) leave('You signed out in another tab.');
  else if (event.data?.type === 'signed-in' && !signedIn) boot();
});

// ---------------------------------------------------------------------------------------------
// navigation: #/c/<conversationId> opens a conversation (kept across reloads)

function navigate(conversationId) {
  const hash = conversationId ? `#/c/${encodeURIComponent(conversationId)}` : '#/';
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (!signedIn) return;
  const match = /^#\/c\/(.+)$/.exec(location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && !store.conversation(id)) {
    try {
      const body = await api.conversations.get(id);
      store.upsertConversation(body.conversation, { details: true });
    } catch {
      navigate(null);
      return;
    }
  }
  store.setOpen(id);
}
window.addEventListener('hashchange', route);

async function messagePerson(userId) {
  const body = await api.conversations.openDirect(userId);
  store.upsertConversation(body.conversation);
  navigate(body.conversation.id);
}

function updateTitle() {
  const unread = [...state.conversations.values()].filter((c) => c.unreadCount > 0 && !c.left).length;
  document.title = unread ? `(${unread}) SwiftChat` : 'SwiftChat';
}

// Hooks for the browser tests (Tests/Browser), off unless the test turns them on for its profile.
if (localStorage.getItem('swiftchat.testHooks') === '1') {
  frameLog.enabled = true;
  const testStream = (name) => {
    if (name === 'chat') return chat.chatStream();
    if (name === 'notifications') return notify.notificationStream();
    throw new Error(`unknown stream ${name}`);
  };
  window.swiftchatTest = {
    frames: () => frameLog.entries,
    // A stream by name: 'chat' or 'notifications'.
    drop: (name, holdMs = 0) => testStream(name)?.drop(holdMs),
    release: (name) => testStream(name)?.release(),
    unsent: () => chat.unsentCount(),
    users: () => [...state.users.values()],
  };
}

boot();
