// The conversation list: most recent activity first, last message, unread count, live.
import { h, replace, coalesce, srOnly, preserveFocus } from '../dom.js';
import { state, on, sortedConversations } from '../state.js';
import { user } from '../users.js';
import { formatListTime, plural } from '../format.js';
import { conversationTitle, otherMemberId, avatar, nameOf, typingText, isMe } from './names.js';

export function conversationList({ onOpen }) {
  const list = h('ul', { class: 'conversation-list', 'aria-label': 'Conversations' });
  const empty = h('p', { class: 'empty' }, 'No conversations yet. Find people to start one.');

  const render = coalesce(() => {
    const items = sortedConversations().filter((c) => !c.left || c.id === state.openId);
    empty.hidden = items.length > 0;
    preserveFocus(list, () => replace(list, items.map((conversation) => item(conversation, onOpen))));
  });
  on('conversations', render);
  on('users', render);
  render();
  return h('div', { class: 'conversations' }, empty, list);
}

function preview(conversation) {
  const typing = typingText(conversation);
  if (typing) return { text: typing, typing: true };
  if (conversation.left) return { text: 'You are no longer a member' };
  const pending = [...conversation.pending.values()].pop();
  const last = pending || conversation.lastMessage;
  if (!last) return { text: conversation.type === 'group' ? 'New group' : 'No messages yet' };
  const who = isMe(last.senderId) ? 'You: ' : conversation.type === 'group' ? `${nameOf(last.senderId)}: ` : '';
  return { text: who + last.body, time: last.sentAt };
}

function item(conversation, onOpen) {
  const title = conversationTitle(conversation);
  const other = conversation.type === 'direct' ? otherMemberId(conversation) : null;
  const online = other ? Boolean(user(other)?.online) : false;
  const { text, time, typing } = preview(conversation);
  const unread = conversation.unreadCount > 0 && conversation.id !== state.openId ? conversation.unreadCount : 0;
  return h('li', {},
    h('a', {
      class: ['conversation-item', unread ? 'has-unread' : null, conversation.left ? 'left' : null],
      href: `#/c/${encodeURIComponent(conversation.id)}`,
      'aria-current': conversation.id === state.openId ? 'page' : null,
      dataset: { conversationId: conversation.id, type: conversation.type, focusKey: `conversation:${conversation.id}` },
      onclick: () => onOpen?.(conversation.id),
    },
    avatar(title, { online, extra: conversation.type === 'group' ? 'group' : '' }),
    h('span', { class: 'conversation-main' },
      h('span', { class: 'conversation-title' }, title, online ? srOnly(', online') : null),
      h('span', { class: ['conversation-preview', typing ? 'typing' : null] }, text)),
    h('span', { class: 'conversation-side' },
      time ? h('time', { class: 'conversation-time', datetime: time }, formatListTime(time)) : null,
      unread ? h('span', { class: 'unread-count' },
        h('span', { 'aria-hidden': 'true' }, unread > 99 ? '99+' : String(unread)),
        srOnly(plural(unread, 'unread message', 'unread messages'))) : null)));
}
