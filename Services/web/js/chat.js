// The /ws/chat side: sending with an outbox that survives reconnects (and reloads of this tab),
// acks, live messages, receipts, typing, and catching up by seq after every (re)connect.
import * as api from './api.js';
import * as store from './state.js';
import { Stream } from './stream.js';
import { refreshMembers } from './users.js';

const { state } = store;
const RESEND_AFTER_MS = 10000; // an unacknowledged send is sent again (same clientMsgId)
const PAGE = 200;
const PAGES_AT_ONCE = 4; // a long gap's pages in flight together

let stream = null;
let outbox = new Map(); // clientMsgId → {clientMsgId, conversationId, body, replyTo, createdAt, lastSent, retryAt, failed}
let resendTimer = null;
let catchingUp = null; // the stream's catch-up on every open (see catchUp), asked again when a gap fetch fails
const markersSent = new Map(); // 'read:<conversationId>' → seq
const channel = 'BroadcastChannel' in window ? new BroadcastChannel('swiftchat-chat') : null;

const storageKey = () => `swiftchat.outbox.${state.me.id}`;

export function startChat({ checkSession }) {
  restoreOutbox();
  stream = new Stream('/ws/chat', {
    onOpen,
    onFrame,
    onState: (value) => store.setStream('chat', value),
    checkSession,
  });
  catchingUp = stream.fetchOnOpen('catch-up', catchUp);
  stream.start();
  resendTimer = setInterval(resendDue, 1000);
  if (channel) channel.onmessage = onTabMessage;
}

export function stopChat() {
  clearInterval(resendTimer);
  stream?.stop();
  stream = null;
  catchingUp = null;
  markersSent.clear();
  if (channel) channel.onmessage = null;
}

export const chatStream = () => stream;
export const unsentCount = () => outbox.size;

// ---------------------------------------------------------------------------------------------
// outbox

function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function persist() {
  try {
    sessionStorage.setItem(storageKey(), JSON.stringify([...outbox.values()]));
  } catch {
    // storage full or disabled: the outbox still lives in memory
  }
}

function restoreOutbox() {
  outbox = new Map();
  try {
    for (const entry of JSON.parse(sessionStorage.getItem(storageKey()) || '[]')) {
      entry.lastSent = 0;
      outbox.set(entry.clientMsgId, entry);
      store.addPending(entry);
    }
  } catch {
    outbox = new Map();
  }
}

export function clearOutbox() {
  outbox = new Map();
  if (state.me) sessionStorage.removeItem(storageKey());
}

function transmit(entry) {
  const frame = { type: 'send', clientMsgId: entry.clientMsgId, conversationId: entry.conversationId, body: entry.body };
  if (entry.replyTo) frame.replyTo = entry.replyTo;
  if (stream?.send(frame)) entry.lastSent = Date.now();
}

function byCreation(a, b) {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0;
}

function resendDue() {
  if (!stream?.isOpen) return;
  const now = Date.now();
  for (const entry of [...outbox.values()].sort(byCreation)) {
    if (entry.failed) continue;
    const due = entry.retryAt ? entry.retryAt <= now : now - entry.lastSent >= RESEND_AFTER_MS;
    if (due) {
      entry.retryAt = 0;
      transmit(entry);
    }
  }
}

export function sendMessage(conversationId, body, replyTo = null) {
  const entry = {
    clientMsgId: newClientMsgId(),
    conversationId,
    body,
    replyTo: replyTo || null,
    createdAt: new Date().toISOString(),
    lastSent: 0,
    retryAt: 0,
    failed: null,
  };
  outbox.set(entry.clientMsgId, entry);
  persist();
  store.addPending(entry);
  transmit(entry);
}

export function retrySend(clientMsgId) {
  const entry = outbox.get(clientMsgId);
  if (!entry) return;
  entry.failed = null;
  persist();
  store.retryPending(entry.conversationId, clientMsgId);
  transmit(entry);
}

export function discardSend(clientMsgId) {
  const entry = outbox.get(clientMsgId);
  if (!entry) return;
  outbox.delete(clientMsgId);
  persist();
  store.removePending(entry.conversationId, clientMsgId);
}

function settle(clientMsgId) {
  if (outbox.delete(clientMsgId)) persist();
}

// ---------------------------------------------------------------------------------------------
// frames

// Then the stream catches up (catchUp).
function onOpen() {
  markersSent.clear();
  // Everything not acknowledged goes again, oldest first, with its original clientMsgId.
  for (const entry of [...outbox.values()].sort(byCreation)) if (!entry.failed) transmit(entry);
}

function onFrame(frame) {
  switch (frame.type) {
    case 'ack':
      settle(frame.clientMsgId);
      store.addMessages(frame.message.conversationId, [frame.message], { live: true });
      break;
    case 'message':
      onMessage(frame.message);
      break;
    case 'receipt':
      store.applyReceipt(frame);
      break;
    case 'typing':
      store.setTyping(frame.conversationId, frame.userId, frame.typing);
      break;
    case 'conversation':
      onConversation(frame);
      break;
    case 'error':
      onError(frame);
      break;
    default:
      break; // frames this client does not know yet (e.g. message_updated before edits ship)
  }
}

function onMessage(message) {
  if (message.senderId === state.me.id) settle(message.clientMsgId);
  store.addMessages(message.conversationId, [message], { live: true });
  const target = store.conversation(message.conversationId);
  if (message.senderId !== state.me.id) sendMarker('delivered', message.conversationId, message.seq);
  if (target && store.hasGap(target)) fetchAfter(target).catch((error) => catchingUp?.later(error));
}

function onConversation({ event, conversation }) {
  const known = store.conversation(conversation.id);
  const target = store.upsertConversation(conversation, { event });
  if (target.left) return;
  // A conversation I just joined: its markers and last message come with the details, and its
  // members' presence with their profiles.
  if (!known || event === 'created' || event === 'member_added') {
    refreshDetails(conversation.id).catch(() => {});
    refreshMembers([...target.members.keys()]).catch(() => {});
  }
}

function onError(frame) {
  const entry = frame.clientMsgId ? outbox.get(frame.clientMsgId) : null;
  if (!entry) {
    if (frame.code !== 'rate_limited') console.warn('chat error', frame.code, frame.message);
    return;
  }
  if (frame.code === 'rate_limited' || frame.code === 'send_failed') {
    entry.retryAt = Date.now() + Math.max(500, frame.retryAfterMs || 2000);
    return;
  }
  entry.failed = frame.message || 'Not sent.';
  persist();
  store.failPending(entry.conversationId, entry.clientMsgId, entry.failed);
}

// ---------------------------------------------------------------------------------------------
// catch-up by cursor (the public contract)

async function catchUp(isCurrent = () => true) {
  const body = await api.conversations.list();
  if (!isCurrent()) return; // the stream closed or stopped meanwhile: its next open catches up
  store.setConversationList(body.conversations || []);
  for (const target of store.sortedConversations()) {
    if (!isCurrent()) return;
    if (target.left) continue;
    if (target.loaded && store.hasGap(target)) await fetchAfter(target);
    if (target.loaded) await refreshDetails(target.id);
    const last = target.lastMessage;
    if (last && last.senderId !== state.me.id && target.lastSeq > target.myReadSeq) {
      sendMarker('delivered', target.id, target.lastSeq);
    }
  }
}

const fetching = new Map();

/**
 * Fetches everything after the contiguous part we hold. Seqs are gap-free, so a long gap's pages
 * are known before any comes back: up to PAGES_AT_ONCE of them are fetched side by side, each a
 * seq range below the lastSeq we know of, the last one open-ended (it also finds what was sent
 * since), until a last page comes back short.
 */
export function fetchAfter(target) {
  if (fetching.has(target.id)) return fetching.get(target.id);
  const run = (async () => {
    for (;;) {
      const after = target.maxSeq;
      const starts = [after];
      while (starts.length < PAGES_AT_ONCE && starts.at(-1) + PAGE < target.lastSeq) starts.push(starts.at(-1) + PAGE);
      const pages = await Promise.allSettled(
        starts.map((from, index) => {
          const before = index < starts.length - 1 ? from + PAGE + 1 : undefined;
          return api.conversations.messages(target.id, { after: from, before, limit: PAGE });
        }),
      );
      // The pages that came back are kept even when another failed: the next try starts after
      // the contiguous part, so it asks again only from the failed page on.
      for (const page of pages) {
        if (page.status === 'fulfilled') store.addMessages(target.id, page.value.messages || [], { page: 'after' });
      }
      const failed = pages.find((page) => page.status === 'rejected');
      if (failed) throw failed.reason;
      if ((pages.at(-1).value.messages || []).length < PAGE || target.maxSeq === after) break;
    }
  })().finally(() => fetching.delete(target.id));
  fetching.set(target.id, run);
  return run;
}

export async function refreshDetails(conversationId) {
  try {
    const body = await api.conversations.get(conversationId);
    store.upsertConversation(body.conversation, { details: true });
  } catch (error) {
    if (error.status === 404) store.markLeft(conversationId);
    else throw error;
  }
}

/** The newest page of a conversation (when it is first opened), and its members' markers. */
export async function loadInitial(conversationId) {
  const [page] = await Promise.all([
    api.conversations.messages(conversationId, { limit: 50 }),
    refreshDetails(conversationId),
  ]);
  const messages = page.messages || [];
  store.addMessages(conversationId, messages, { page: 'initial' });
  const target = store.conversation(conversationId);
  store.setHasOlder(conversationId, messages.length > 0 && messages[0].seq > 1);
  if (store.hasGap(target)) await fetchAfter(target);
}

export async function loadOlder(conversationId) {
  const target = store.conversation(conversationId);
  if (!target || !target.hasOlder || !target.minSeq) return;
  const page = await api.conversations.messages(conversationId, { before: target.minSeq, limit: 50 });
  const messages = page.messages || [];
  store.addMessages(conversationId, messages, { page: 'older' });
  store.setHasOlder(conversationId, messages.length > 0 && messages[0].seq > 1);
}

// ---------------------------------------------------------------------------------------------
// markers and typing

function sendMarker(kind, conversationId, seq) {
  const key = `${kind}:${conversationId}`;
  if ((markersSent.get(key) || 0) >= seq) return false;
  if (!stream?.send({ type: kind, conversationId, seq })) return false;
  markersSent.set(key, seq);
  return true;
}

/** Called by the view when messages up to `seq` are on screen in a focused tab. */
export function markRead(conversationId, seq) {
  if (sendMarker('read', conversationId, seq)) {
    store.markReadLocally(conversationId, seq);
    if (seq >= (store.conversation(conversationId)?.lastSeq || 0)) store.markConversationNotificationsRead(conversationId);
    channel?.postMessage({ type: 'read', userId: state.me.id, conversationId, seq });
  }
}

export function sendTyping(conversationId, typing) {
  stream?.send({ type: 'typing', conversationId, typing });
}

// Another tab of mine read a conversation: my unread counts follow (receipts go to others only).
function onTabMessage(event) {
  const data = event.data || {};
  if (data.type === 'read' && data.userId === state.me?.id) store.markReadLocally(data.conversationId, data.seq);
}
