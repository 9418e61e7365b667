// The open conversation: header (name, presence or typing), messages, reply bar and composer.
import { h, replace, setText, coalesce } from '../dom.js';
import * as api from '../api.js';
import { state, on, conversation } from '../state.js';
import * as chat from '../chat.js';
import { user, refreshMembers } from '../users.js';
import { formatLastSeen } from '../format.js';
import { conversationTitle, otherMemberId, avatar, typingText, nameOf } from './names.js';
import { messageList } from './message-list.js';

const MAX_BODY = 4000;
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

export function chatView(container, { onBack, onToggleDetails }) {
  let current = null; // {id, list, unsubscribe, stopTyping}

  function show(conversationId) {
    if (current?.id === conversationId) return;
    current?.dispose();
    current = null;
    if (!conversationId) {
      replace(container, h('div', { class: 'chat-empty' },
        h('h2', {}, 'Welcome to SwiftChat'),
        h('p', {}, 'Pick a conversation, or find people to start one.')));
      return;
    }
    current = mount(container, conversationId, { onBack, onToggleDetails });
  }

  return {
    show,
    focusComposer: () => current?.focusComposer(),
    setDetailsExpanded: (expanded) => current?.setDetailsExpanded(expanded),
  };
}

function mount(container, conversationId, { onBack, onToggleDetails }) {
  const title = h('h2', { class: 'chat-title', id: 'chat-title' });
  const subtitle = h('p', { class: 'chat-subtitle', id: 'chat-subtitle', 'aria-live': 'polite' });
  const avatarSlot = h('span', { class: 'avatar-slot' });
  const detailsButton = h('button', {
    type: 'button', class: 'secondary small details-toggle', 'aria-controls': 'details', 'aria-expanded': 'false',
    onclick: () => onToggleDetails(),
  }, 'Info');
  const header = h('header', { class: 'chat-header' },
    h('button', { type: 'button', class: 'back icon-button', 'aria-label': 'Back to conversations', onclick: onBack }, '←'),
    avatarSlot,
    h('div', { class: 'chat-heading' }, title, subtitle),
    detailsButton);
  const notice = h('p', { class: 'chat-notice', role: 'status', hidden: true });
  let replyTo = null;
  const replyText = h('span', { class: 'reply-bar-text' });
  const replyBar = h('div', { class: 'reply-bar', hidden: true },
    replyText,
    h('button', { type: 'button', class: 'small link', onclick: () => setReply(null) }, 'Cancel reply'));

  const list = messageList(conversationId, { onReply: (message) => setReply(message) });

  const input = h('textarea', {
    id: 'composer-input', name: 'body', rows: '1', maxlength: String(MAX_BODY), placeholder: 'Type a message',
    autocomplete: 'off', 'aria-describedby': 'composer-hint',
  });
  const sendButton = h('button', { type: 'submit', class: 'primary send-button' }, 'Send');
  const composerError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const composer = h('form', { class: 'composer', 'aria-label': 'Send a message' },
    h('label', { for: 'composer-input', class: 'visually-hidden' }, 'Message'),
    h('p', { id: 'composer-hint', class: 'visually-hidden' }, 'Enter sends, Shift+Enter starts a new line.'),
    input, sendButton, composerError);

  replace(container, h('section', { class: 'chat-pane', 'aria-labelledby': 'chat-title' },
    header, notice, list.element, replyBar, composer));

  // typing: true at most every few seconds while typing, false after a pause or on send
  let typingSentAt = 0;
  let idleTimer = null;
  function typing(active) {
    clearTimeout(idleTimer);
    if (!active) {
      if (typingSentAt) chat.sendTyping(conversationId, false);
      typingSentAt = 0;
      return;
    }
    if (Date.now() - typingSentAt > TYPING_REFRESH_MS) {
      chat.sendTyping(conversationId, true);
      typingSentAt = Date.now();
    }
    idleTimer = setTimeout(() => typing(false), TYPING_IDLE_MS);
  }

  function setReply(message) {
    replyTo = message;
    replyBar.hidden = !message;
    if (message) {
      setText(replyText, `Replying to ${nameOf(message.senderId)}: ${message.body.slice(0, 80)}`);
      input.focus();
    }
  }

  function submit() {
    const target = conversation(conversationId);
    const body = input.value;
    composerError.hidden = true;
    if (!body.trim() || !target || target.left) return;
    if (body.length > MAX_BODY) {
      setText(composerError, `A message can be at most ${MAX_BODY} characters.`);
      composerError.hidden = false;
      return;
    }
    chat.sendMessage(conversationId, body, replyTo?.id || null);
    input.value = '';
    setReply(null);
    typing(false);
    input.focus();
  }

  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape' && replyTo) {
      setReply(null);
    }
  });
  input.addEventListener('input', () => typing(input.value.length > 0));
  input.addEventListener('blur', () => typing(false));

  const renderHeader = () => {
    const target = conversation(conversationId);
    if (!target) return;
    const name = conversationTitle(target);
    setText(title, name);
    let line;
    const typingLine = typingText(target);
    if (target.type === 'direct') {
      const other = otherMemberId(target);
      const found = other ? user(other) : null;
      line = typingLine || formatLastSeen(found);
      replace(avatarSlot, avatar(name, { online: Boolean(found?.online) }));
    } else {
      const names = [...target.members.keys()].map(nameOf).sort((a, b) => (a === 'You' ? 1 : b === 'You' ? -1 : a.localeCompare(b)));
      line = typingLine || names.join(', ');
      replace(avatarSlot, avatar(name, { extra: 'group' }));
    }
    setText(subtitle, line);
    subtitle.classList.toggle('typing', Boolean(typingLine));
    setText(detailsButton, target.type === 'group' ? 'Group info' : 'Contact info');
    notice.hidden = !target.left;
    if (target.left) setText(notice, target.type === 'group' ? 'You are no longer a member of this group.' : 'This conversation is no longer available.');
    input.disabled = target.left;
    sendButton.disabled = target.left;
  };

  const render = coalesce(() => {
    renderHeader();
    list.render();
  });
  const unsubscribe = [
    on('conversation:' + conversationId, render),
    on('users', render),
    on('features', render),
    on('streams', () => list.maybeRead()),
  ];

  // First open: load the newest page and the members' markers.
  const target = conversation(conversationId);
  if (!target.loaded) {
    chat.loadInitial(conversationId).catch((error) => {
      if (error.status === 404) {
        setText(notice, 'This conversation does not exist or you are not a member.');
        notice.hidden = false;
      } else {
        setText(notice, api.describeError(error));
        notice.hidden = false;
      }
    });
  } else if (!target.detailsLoaded) {
    chat.refreshDetails(conversationId).catch(() => {});
  }
  // The header and member list show presence: start from fresh profiles (frames keep it current).
  refreshMembers([...target.members.keys()]).catch(() => {});
  render();
  input.focus({ preventScroll: true });

  return {
    id: conversationId,
    focusComposer: () => input.focus(),
    dispose() {
      typing(false);
      unsubscribe.forEach((off) => off());
      list.destroy();
    },
    setDetailsExpanded(expanded) {
      detailsButton.setAttribute('aria-expanded', String(expanded));
    },
  };
}
