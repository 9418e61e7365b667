// The client's one source of truth, and the only code that changes it. Views subscribe to topics
// and re-render their part; nothing else holds copies.
//
// Topics: 'me', 'conversations' (the list), 'conversation:<id>' (one conversation's messages,
// members, markers or typing), 'open', 'users', 'contacts', 'notifications', 'streams', 'features'.

const listeners = new Map();

export function on(topic, listener) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(listener);
  return () => listeners.get(topic)?.delete(listener);
}

export function emit(topic) {
  for (const listener of [...(listeners.get(topic) || [])]) listener();
}

export const state = {
  me: null,
  conversations: new Map(),
  openId: null,
  users: new Map(),
  contacts: new Set(),
  notifications: new Map(),
  notificationsUnreadMore: false,
  streams: { chat: 'closed', notifications: 'closed' },
  // What the server supports, learned from what it answers (features the API marks as planned).
  features: { replies: false, roles: true },
};

let rankCounter = 0;

export function reset(me) {
  state.me = me;
  state.conversations = new Map();
  state.openId = null;
  state.users = new Map();
  state.contacts = new Set();
  state.notifications = new Map();
  state.notificationsUnreadMore = false;
  state.streams = { chat: 'closed', notifications: 'closed' };
  state.features = { replies: false, roles: true };
  if (me) state.users.set(me.id, { ...me });
  emit('me');
  emit('conversations');
  emit('open');
}

// ---------------------------------------------------------------------------------------------
// conversations

function blank(id) {
  return {
    id,
    type: 'direct',
    name: null,
    members: new Map(), // userId → {userId, role, deliveredSeq, readSeq, deleted}
    lastMessage: null,
    lastSeq: 0,
    unreadCount: 0,
    listedSeq: 0, // the list's lastSeq: its unreadCount covers the messages up to it
    countedLive: new Set(), // seqs above listedSeq counted unread as they arrived (in any order)
    myReadSeq: 0,
    rank: 0, // server order (smaller is more recent)
    activity: 0, // local time of live activity since the list was fetched
    left: false,
    messages: new Map(), // id → message
    pending: new Map(), // clientMsgId → pending message
    loaded: false,
    hasOlder: true,
    minSeq: 0, // smallest seq loaded
    maxSeq: 0, // every seq from minSeq to maxSeq is loaded
    detailsLoaded: false,
    typing: new Map(), // userId → timer
  };
}

export const conversation = (id) => state.conversations.get(id);

function ensure(id) {
  let found = state.conversations.get(id);
  if (!found) {
    found = blank(id);
    found.rank = --rankCounter;
    state.conversations.set(id, found);
  }
  return found;
}

function mergeMembers(target, members) {
  const next = new Map();
  for (const member of members || []) {
    const previous = target.members.get(member.userId) || {};
    next.set(member.userId, {
      userId: member.userId,
      role: member.role || previous.role || 'member',
      deliveredSeq: Math.max(member.deliveredSeq ?? 0, previous.deliveredSeq ?? 0),
      readSeq: Math.max(member.readSeq ?? 0, previous.readSeq ?? 0),
      deleted: Boolean(member.deleted),
    });
  }
  target.members = next;
  target.left = state.me ? !next.has(state.me.id) : false;
}

function noteFeatures(message) {
  if (!state.features.replies && message && Object.prototype.hasOwnProperty.call(message, 'replyTo')) {
    state.features.replies = true;
    emit('features');
  }
}

/** GET /api/conversations: the list in server order; loaded messages are kept. */
export function setConversationList(list) {
  const seen = new Set();
  list.forEach((summary, index) => {
    const target = ensure(summary.id);
    seen.add(summary.id);
    target.type = summary.type;
    target.name = summary.name ?? null;
    mergeMembers(target, summary.members);
    if (summary.lastMessage && (!target.lastMessage || summary.lastMessage.seq >= target.lastMessage.seq)) {
      target.lastMessage = summary.lastMessage;
      noteFeatures(summary.lastMessage);
    }
    target.lastSeq = Math.max(target.lastSeq, summary.lastSeq ?? 0);
    target.listedSeq = Math.max(target.listedSeq, summary.lastSeq ?? 0);
    forgetCounted(target, target.listedSeq);
    // The server's read marker is the truth: one sent just before a connection broke may be lost,
    // and the open conversation then sends it again.
    target.unreadCount = summary.unreadCount ?? 0;
    target.myReadSeq = summary.myReadSeq ?? 0;
    target.rank = index;
    target.activity = 0;
  });
  for (const [id, target] of state.conversations) {
    if (!seen.has(id) && !target.left) {
      target.left = true;
      emit('conversation:' + id);
    }
  }
  emit('conversations');
  for (const id of seen) emit('conversation:' + id);
}

/** A conversation object from a POST response, GET details or a `conversation` frame. */
export function upsertConversation(snapshot, { event = null, details = false } = {}) {
  const isNew = !state.conversations.has(snapshot.id);
  const target = ensure(snapshot.id);
  target.type = snapshot.type || target.type;
  target.name = snapshot.name ?? null;
  mergeMembers(target, snapshot.members);
  if (details) target.detailsLoaded = true;
  if (snapshot.lastSeq !== undefined) target.lastSeq = Math.max(target.lastSeq, snapshot.lastSeq);
  if (isNew || event === 'created' || event === 'member_added') target.activity = Math.max(target.activity, Date.now());
  emit('conversations');
  emit('conversation:' + snapshot.id);
  return target;
}

export function markLeft(id) {
  const target = state.conversations.get(id);
  if (!target) return;
  target.left = true;
  emit('conversations');
  emit('conversation:' + id);
}

/**
 * Adds stored messages (a page, an ack, a live frame), deduplicated by id; a message that
 * settles a pending send replaces it. Returns the messages that were new.
 */
export function addMessages(conversationId, messages, { live = false, page = null } = {}) {
  const target = ensure(conversationId);
  const fresh = [];
  for (const message of messages) {
    noteFeatures(message);
    if (message.senderId === state.me?.id) target.pending.delete(message.clientMsgId);
    senderCaughtUp(target, message);
    if (target.messages.has(message.id)) continue;
    // Live frames of one conversation may arrive out of seq order (two instances route them).
    const counted = message.seq <= target.listedSeq || target.countedLive.has(message.seq);
    if (target.loaded || page) target.messages.set(message.id, message);
    fresh.push(message);
    if (!target.lastMessage || message.seq >= target.lastMessage.seq) target.lastMessage = message;
    target.lastSeq = Math.max(target.lastSeq, message.seq);
    if (live) {
      target.activity = Date.now();
      if (message.senderId !== state.me?.id && message.seq > target.myReadSeq && !counted) {
        target.unreadCount += 1;
        target.countedLive.add(message.seq);
      }
      const typingTimer = target.typing.get(message.senderId);
      if (typingTimer) {
        clearTimeout(typingTimer);
        target.typing.delete(message.senderId);
      }
    }
  }
  if (page) {
    target.loaded = true;
    if (page === 'older' || page === 'initial') {
      const seqs = messages.map((m) => m.seq);
      if (seqs.length) target.minSeq = target.minSeq ? Math.min(target.minSeq, ...seqs) : Math.min(...seqs);
      if (page === 'initial' && seqs.length) target.maxSeq = Math.max(target.maxSeq, ...seqs);
      if (page === 'initial' && !seqs.length) target.maxSeq = 0;
    }
  }
  if (target.loaded) advanceContiguous(target);
  if (fresh.length || page) {
    emit('conversation:' + conversationId);
    emit('conversations');
  }
  return fresh;
}

// The server counts a member's own message as read and delivered by them up to its seq (GET
// details shows it), without a `receipt` frame for it: mirror that here so ticks match a reload.
function senderCaughtUp(target, message) {
  const member = target.members.get(message.senderId);
  if (!member) return;
  member.deliveredSeq = Math.max(member.deliveredSeq || 0, message.seq);
  member.readSeq = Math.max(member.readSeq || 0, message.seq);
}

function advanceContiguous(target) {
  const seqs = new Set([...target.messages.values()].map((m) => m.seq));
  if (!target.minSeq && seqs.size) target.minSeq = Math.min(...seqs);
  while (seqs.has(target.maxSeq + 1)) target.maxSeq += 1;
}

/** True when a loaded conversation has a gap between what we hold and what exists. */
export const hasGap = (target) => target.loaded && target.lastSeq > target.maxSeq;

export function setHasOlder(conversationId, hasOlder) {
  const target = ensure(conversationId);
  target.hasOlder = hasOlder;
  emit('conversation:' + conversationId);
}

export function addPending(entry) {
  const target = ensure(entry.conversationId);
  target.pending.set(entry.clientMsgId, {
    clientMsgId: entry.clientMsgId,
    conversationId: entry.conversationId,
    senderId: state.me.id,
    body: entry.body,
    replyTo: entry.replyTo || null,
    sentAt: entry.createdAt,
    failed: entry.failed || null,
  });
  target.activity = Date.now();
  emit('conversation:' + entry.conversationId);
  emit('conversations');
}

export function failPending(conversationId, clientMsgId, reason) {
  const pending = state.conversations.get(conversationId)?.pending.get(clientMsgId);
  if (!pending) return;
  pending.failed = reason;
  emit('conversation:' + conversationId);
}

export function retryPending(conversationId, clientMsgId) {
  const pending = state.conversations.get(conversationId)?.pending.get(clientMsgId);
  if (!pending) return;
  pending.failed = null;
  emit('conversation:' + conversationId);
}

export function removePending(conversationId, clientMsgId) {
  state.conversations.get(conversationId)?.pending.delete(clientMsgId);
  emit('conversation:' + conversationId);
  emit('conversations');
}

export function applyReceipt({ conversationId, userId, deliveredSeq, readSeq }) {
  const target = state.conversations.get(conversationId);
  if (!target) return;
  const member = target.members.get(userId) || { userId, role: 'member', deliveredSeq: 0, readSeq: 0 };
  member.deliveredSeq = Math.max(member.deliveredSeq || 0, deliveredSeq || 0, readSeq || 0);
  member.readSeq = Math.max(member.readSeq || 0, readSeq || 0);
  target.members.set(userId, member);
  emit('conversation:' + conversationId);
}

function forgetCounted(target, upTo) {
  for (const seq of target.countedLive) if (seq <= upTo) target.countedLive.delete(seq);
}

/** I read up to `seq` (here or in another tab). */
export function markReadLocally(conversationId, seq) {
  const target = state.conversations.get(conversationId);
  if (!target || seq <= target.myReadSeq) return;
  target.myReadSeq = seq;
  forgetCounted(target, seq);
  if (seq >= target.lastSeq) {
    target.unreadCount = 0;
  } else if (target.loaded) {
    target.unreadCount = [...target.messages.values()].filter(
      (m) => m.seq > seq && m.senderId !== state.me.id,
    ).length;
  }
  emit('conversations');
  emit('conversation:' + conversationId);
}

const TYPING_TTL_MS = 6000;

export function setTyping(conversationId, userId, typing) {
  const target = state.conversations.get(conversationId);
  if (!target || userId === state.me?.id) return;
  clearTimeout(target.typing.get(userId));
  target.typing.delete(userId);
  if (typing) {
    target.typing.set(userId, setTimeout(() => {
      target.typing.delete(userId);
      emit('conversation:' + conversationId);
      emit('conversations');
    }, TYPING_TTL_MS));
  }
  emit('conversation:' + conversationId);
  emit('conversations');
}

/** Conversations by activity: live activity first (newest first), then the server's order. */
export function sortedConversations() {
  return [...state.conversations.values()].sort((a, b) => {
    if (a.activity !== b.activity) return b.activity - a.activity;
    return a.rank - b.rank;
  });
}

/** The open conversation's messages in order: stored ones by seq, then pending ones. */
export function timeline(target) {
  const stored = [...target.messages.values()].sort((a, b) => a.seq - b.seq);
  const pending = [...target.pending.values()].sort((a, b) => (a.sentAt < b.sentAt ? -1 : 1));
  return stored.concat(pending);
}

export function setOpen(id) {
  if (state.openId === id) return;
  state.openId = id;
  emit('open');
  emit('conversations');
}

// ---------------------------------------------------------------------------------------------
// users, contacts, presence

export function mergeUser(user) {
  const previous = state.users.get(user.id) || {};
  state.users.set(user.id, { ...previous, ...user });
  emit('users');
}

export function mergeUsers(list) {
  for (const user of list) {
    const previous = state.users.get(user.id) || {};
    state.users.set(user.id, { ...previous, ...user });
  }
  emit('users');
}

export function setPresence({ userId, online, lastSeenAt }) {
  const previous = state.users.get(userId) || { id: userId };
  state.users.set(userId, { ...previous, online, lastSeenAt: lastSeenAt ?? previous.lastSeenAt ?? null });
  emit('users');
}

export function setContacts(list) {
  state.contacts = new Set(list.map((user) => user.id));
  mergeUsers(list);
  emit('contacts');
}

export function setContact(userId, isContact) {
  if (isContact) state.contacts.add(userId);
  else state.contacts.delete(userId);
  emit('contacts');
}

// ---------------------------------------------------------------------------------------------
// notifications and streams

export function setNotifications(list, { unreadMore = false } = {}) {
  for (const notification of list) state.notifications.set(notification.id, notification);
  state.notificationsUnreadMore = unreadMore;
  emit('notifications');
}

export function upsertNotification(notification) {
  state.notifications.set(notification.id, notification);
  emit('notifications');
}

export function markNotificationsRead(ids) {
  for (const id of ids) {
    const notification = state.notifications.get(id);
    if (notification) notification.read = true;
  }
  if (!ids.length || ids.length === state.notifications.size) state.notificationsUnreadMore = false;
  emit('notifications');
}

/**
 * Reading a conversation up to its last message marks its `message` notification read on the
 * server (notifications' rule); mirror it so the badge drops at once.
 */
export function markConversationNotificationsRead(conversationId) {
  let changed = false;
  for (const notification of state.notifications.values()) {
    if (notification.kind === 'message' && !notification.read && notification.payload?.conversationId === conversationId) {
      notification.read = true;
      changed = true;
    }
  }
  if (changed) emit('notifications');
}

export const unreadNotifications = () => [...state.notifications.values()].filter((n) => !n.read).length;

export function setStream(name, value) {
  if (state.streams[name] === value) return;
  state.streams[name] = value;
  emit('streams');
}

/** Drops every subscription (the signed-in views are rebuilt from scratch after a sign-in). */
export function clearListeners() {
  listeners.clear();
}
