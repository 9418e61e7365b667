// How people and conversations are named on screen.
import { state } from '../state.js';
import { user } from '../users.js';
import { displayName, initial } from '../format.js';

export const isMe = (userId) => userId === state.me?.id;

export function nameOf(userId) {
  if (isMe(userId)) return 'You';
  return displayName(user(userId));
}

export function otherMemberId(conversation) {
  for (const userId of conversation.members.keys()) if (!isMe(userId)) return userId;
  return null;
}

export function conversationTitle(conversation) {
  if (conversation.type === 'group') return conversation.name || 'Unnamed group';
  const other = otherMemberId(conversation);
  if (!other) return 'Direct chat';
  const member = conversation.members.get(other);
  return member?.deleted ? 'Deleted account' : displayName(user(other));
}

export function avatar(name, { online = false, extra = '' } = {}) {
  const element = document.createElement('span');
  element.className = `avatar ${extra}`.trim();
  element.setAttribute('aria-hidden', 'true');
  element.textContent = initial(name);
  if (online) {
    const dot = document.createElement('span');
    dot.className = 'presence-dot';
    element.append(dot);
  }
  return element;
}

/** "Alice is typing…", "Alice and Bob are typing…", or null. */
export function typingText(conversation) {
  const names = [...conversation.typing.keys()].map(nameOf);
  if (!names.length) return null;
  if (conversation.type === 'direct') return 'typing…';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
