// The /ws/notifications side: stored notifications (with what was missed fetched on every
// connect) and presence frames.
import * as api from './api.js';
import * as store from './state.js';
import { Stream } from './stream.js';
import { refreshPresence } from './users.js';

let stream = null;

export function startNotifications({ checkSession }) {
  stream = new Stream('/ws/notifications', {
    onFrame,
    onState: (value) => store.setStream('notifications', value),
    checkSession,
  });
  // On every (re)connect: the notifications missed, and the presence of contacts and direct peers.
  stream.fetchOnOpen('notifications load', load);
  stream.fetchOnOpen('presence refresh', () => refreshPresence(directPeers()));
  stream.start();
}

export function stopNotifications() {
  stream?.stop();
  stream = null;
}

export const notificationStream = () => stream;

function directPeers() {
  const me = store.state.me?.id;
  const peers = [];
  for (const conversation of store.state.conversations.values()) {
    if (conversation.type !== 'direct') continue;
    for (const userId of conversation.members.keys()) if (userId !== me) peers.push(userId);
  }
  return peers;
}

async function load() {
  const [latest, unread] = await Promise.all([
    api.notifications.list({ limit: 30 }),
    api.notifications.list({ unread: true, limit: 100 }),
  ]);
  store.setNotifications([...(latest.notifications || []), ...(unread.notifications || [])], {
    unreadMore: Boolean(unread.nextCursor),
  });
}

function onFrame(frame) {
  if (frame.type === 'notification' && frame.notification) store.upsertNotification(frame.notification);
  else if (frame.type === 'presence') store.setPresence(frame);
}

export async function markRead(id) {
  const body = await api.notifications.markRead(id);
  if (body?.notification) store.upsertNotification(body.notification);
  else store.markNotificationsRead([id]);
}

export async function markAllRead() {
  await api.notifications.markAllRead();
  store.markNotificationsRead([...store.state.notifications.keys()]);
}
