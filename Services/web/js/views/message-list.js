// The messages of one conversation: day separators, own messages on the right with their ticks,
// older history loaded as you scroll up, and `read` sent for what is on screen in a focused tab.
import { h, replace, setText, srOnly } from '../dom.js';
import { state, conversation, timeline } from '../state.js';
import * as chat from '../chat.js';
import { formatTime, formatDay, dayKey } from '../format.js';
import { nameOf, isMe } from './names.js';
import { icon } from './icons.js';

const STATUS_TEXT = { pending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };
const TICKS = { sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };

/** Where one of my messages stands: pending, sent (acked), delivered, read; and, in a group, by how many. */
export function ownStatus(target, message) {
  if (!message.id) return { status: message.failed ? 'failed' : 'pending', readBy: 0, others: 0 };
  const others = [...target.members.values()].filter((m) => !isMe(m.userId) && !m.deleted);
  if (!others.length) return { status: 'sent', readBy: 0, others: 0 };
  const readBy = others.filter((m) => (m.readSeq || 0) >= message.seq).length;
  const deliveredTo = others.filter((m) => Math.max(m.deliveredSeq || 0, m.readSeq || 0) >= message.seq).length;
  let status = 'sent';
  if (readBy === others.length) status = 'read';
  else if (deliveredTo === others.length) status = 'delivered';
  return { status, readBy, others: others.length };
}

export function messageList(conversationId, { onReply }) {
  const older = h('button', { type: 'button', class: 'load-older link' }, 'Load earlier messages');
  const olderBox = h('div', { class: 'older' }, older);
  const items = h('ol', { class: 'message-items' });
  const note = h('p', { class: 'messages-note', role: 'status' });
  const scroller = h('div', {
    class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions',
    'aria-label': 'Messages', tabindex: '0',
  }, olderBox, note, items);

  const elements = new Map(); // key → <li>
  const visibleSeqs = new Set();
  let loadingOlder = false;
  let firstRender = true;

  const readObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const seq = Number(entry.target.dataset.seq);
      // On screen: at least half of it, or half the view for a very tall one.
      const half = (entry.rootBounds?.height || 0) / 2;
      if (entry.isIntersecting && (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= half)) visibleSeqs.add(seq);
      else visibleSeqs.delete(seq);
    }
    maybeRead();
  }, { root: scroller, threshold: [0, 0.25, 0.5, 0.75, 1] });

  const olderObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadOlder();
  }, { root: scroller, rootMargin: '300px 0px 0px 0px' });
  olderObserver.observe(olderBox);
  older.addEventListener('click', loadOlder);

  /** `read` up to the newest message from others that is on screen, when this tab is focused. */
  function maybeRead() {
    const target = conversation(conversationId);
    if (!target || target.left || document.visibilityState !== 'visible' || !document.hasFocus()) return;
    if (!visibleSeqs.size) return;
    const seq = Math.max(...visibleSeqs);
    if (seq > target.myReadSeq) chat.markRead(conversationId, seq);
  }
  const onFocusChange = () => maybeRead();
  window.addEventListener('focus', onFocusChange);
  document.addEventListener('visibilitychange', onFocusChange);

  async function loadOlder() {
    const target = conversation(conversationId);
    if (loadingOlder || !target?.loaded || !target.hasOlder) return;
    loadingOlder = true;
    older.disabled = true;
    setText(older, 'Loading earlier messages…');
    try {
      await chat.loadOlder(conversationId);
    } catch {
      setText(note, 'Could not load earlier messages.');
    } finally {
      loadingOlder = false;
      older.disabled = false;
      setText(older, 'Load earlier messages');
    }
    // Still at the top (a short page): keep going.
    if (conversation(conversationId)?.hasOlder && scroller.scrollTop < 300) requestIdleLoad();
  }
  const requestIdleLoad = () => setTimeout(loadOlder, 50);

  function entriesOf(target) {
    const entries = [];
    let lastDay = null;
    for (const message of timeline(target)) {
      const day = dayKey(message.sentAt);
      if (day !== lastDay) {
        entries.push({ key: `day:${day}`, day: message.sentAt });
        lastDay = day;
      }
      entries.push({ key: `m:${message.senderId}:${message.clientMsgId}`, message });
    }
    return entries;
  }

  function render() {
    const target = conversation(conversationId);
    if (!target) return;
    olderBox.hidden = !target.loaded || !target.hasOlder;
    if (!target.loaded) {
      setText(note, 'Loading messages…');
      return;
    }
    const entries = entriesOf(target);
    setText(note, entries.length ? '' : 'No messages yet. Say hello!');

    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    const firstBefore = items.querySelector('.message');
    const anchorTop = firstBefore ? firstBefore.offsetTop - scroller.scrollTop : 0;
    const lastBefore = items.lastElementChild;

    reconcile(target, entries);

    const lastAfter = items.lastElementChild;
    const ownNew = lastAfter !== lastBefore && lastAfter?.classList.contains('own');
    if (firstRender || atBottom || ownNew) {
      scroller.scrollTop = scroller.scrollHeight;
    } else if (firstBefore && firstBefore.isConnected) {
      scroller.scrollTop = firstBefore.offsetTop - anchorTop; // older messages went in above
    }
    firstRender = false;
    maybeRead();
  }

  function reconcile(target, entries) {
    const wanted = new Set(entries.map((entry) => entry.key));
    for (const [key, element] of elements) {
      if (!wanted.has(key)) {
        readObserver.unobserve(element);
        element.remove();
        elements.delete(key);
      }
    }
    let cursor = items.firstElementChild;
    for (const entry of entries) {
      let element = elements.get(entry.key);
      if (!element) {
        element = entry.day ? daySeparator(entry.day) : h('li', { class: 'message' });
        elements.set(entry.key, element);
      }
      if (entry.message) update(element, target, entry.message);
      if (element !== cursor) items.insertBefore(element, cursor);
      else cursor = cursor.nextElementSibling;
    }
  }

  function update(element, target, message) {
    const own = isMe(message.senderId);
    const { status, readBy, others } = own ? ownStatus(target, message) : { status: null };
    const reply = replyOf(target, message);
    const signature = JSON.stringify([
      message.id, message.body, status, readBy, message.failed, nameOf(message.senderId), reply?.body,
      state.features.replies, target.type,
    ]);
    if (element.dataset.signature === signature) return;
    element.dataset.signature = signature;
    element.className = ['message', own ? 'own' : 'other', status ? `status-${status}` : null].filter(Boolean).join(' ');
    element.dataset.senderId = message.senderId;
    element.dataset.clientMsgId = message.clientMsgId;
    if (message.id) element.dataset.messageId = message.id;
    if (status) element.dataset.status = status;
    else delete element.dataset.status;
    if (message.id) {
      element.dataset.seq = String(message.seq);
      if (!own) readObserver.observe(element);
    }
    const showSender = !own && target.type === 'group';
    replace(element, h('div', { class: 'bubble' },
      h('p', { class: ['message-sender', showSender ? null : 'visually-hidden'] }, own ? 'You:' : `${nameOf(message.senderId)}:`),
      reply ? h('blockquote', { class: 'reply-quote' },
        h('p', { class: 'reply-sender' }, nameOf(reply.senderId)),
        h('p', { class: 'reply-body' }, reply.body ?? 'Deleted message')) : null,
      h('p', { class: 'message-body' }, message.body),
      h('p', { class: 'message-meta' },
        h('time', { datetime: message.sentAt }, formatTime(message.sentAt)),
        own ? statusBadge(status, readBy, others, target.type) : null),
      actions(message, own, status)));
  }

  function replyOf(target, message) {
    if (!message.replyTo) return null;
    if (typeof message.replyTo === 'object') return message.replyTo;
    const original = target.messages.get(message.replyTo);
    return original ? { senderId: original.senderId, body: original.body.slice(0, 200) } : null;
  }

  function actions(message, own, status) {
    const buttons = [];
    if (status === 'failed') {
      buttons.push(h('span', { class: 'failure', role: 'alert' }, message.failed));
      buttons.push(h('button', { type: 'button', class: 'small', onclick: () => chat.retrySend(message.clientMsgId) }, 'Retry'));
      buttons.push(h('button', { type: 'button', class: 'small secondary', onclick: () => chat.discardSend(message.clientMsgId) }, 'Discard'));
    } else if (state.features.replies && message.id) {
      buttons.push(h('button', {
        type: 'button', class: 'small link reply-button',
        'aria-label': `Reply to ${own ? 'your message' : nameOf(message.senderId)}: ${message.body.slice(0, 40)}`,
        onclick: () => onReply(message),
      }, 'Reply'));
    }
    return buttons.length ? h('div', { class: 'message-actions' }, buttons) : null;
  }

  function destroy() {
    readObserver.disconnect();
    olderObserver.disconnect();
    window.removeEventListener('focus', onFocusChange);
    document.removeEventListener('visibilitychange', onFocusChange);
  }

  return { element: scroller, render, destroy, maybeRead };
}

function daySeparator(date) {
  return h('li', { class: 'day-separator' }, h('h3', { class: 'day-label' }, formatDay(date)));
}

function statusBadge(status, readBy, others, type) {
  const groupNote = type === 'group' && readBy > 0 && status !== 'read' ? `Read by ${readBy} of ${others}` : null;
  const groupRead = type === 'group' && status === 'read' ? (others === 1 ? 'Read' : `Read by all ${others}`) : null;
  return h('span', { class: 'status' },
    status === 'pending' ? icon('clock', 'icon ticks') : h('span', { class: 'ticks', 'aria-hidden': 'true' }, TICKS[status]),
    srOnly(STATUS_TEXT[status]),
    groupNote || groupRead ? h('span', { class: 'read-by' }, groupNote || groupRead) : null);
}
