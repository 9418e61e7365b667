// The bell: unread badge, and a panel of notifications (mark one or all read, open the chat).
import { h, replace, setText, coalesce, srOnly, preserveFocus } from '../dom.js';
import { describeError } from '../api.js';
import { state, on, unreadNotifications } from '../state.js';
import * as notify from '../notify.js';
import { formatListTime, plural } from '../format.js';
import { nameOf } from './names.js';
import { icon } from './icons.js';

function describe(notification) {
  const p = notification.payload || {};
  const where = p.conversationName ? ` in ${p.conversationName}` : '';
  switch (notification.kind) {
    case 'message': {
      const from = p.lastMessage?.senderId ? nameOf(p.lastMessage.senderId) : 'someone';
      return {
        title: `${plural(p.count || 1, 'new message', 'new messages')} from ${from}${where}`,
        detail: p.lastMessage?.body || '',
        conversationId: p.conversationId,
      };
    }
    case 'group_added':
      return { title: `${nameOf(p.actorId)} added you to ${p.conversationName || 'a group'}`, conversationId: p.conversationId };
    case 'group_removed':
      return { title: `${nameOf(p.actorId)} removed you from ${p.conversationName || 'a group'}` };
    case 'contact_added':
      return { title: `${nameOf(p.actorId)} added you as a contact` };
    case 'signed_in':
      return { title: 'New sign-in to your account', detail: 'If this was not you, sign out and change your password.' };
    default:
      return { title: 'Notification' };
  }
}

export function notificationsButton({ onOpenConversation }) {
  const badge = h('span', { class: 'badge notification-badge', 'aria-hidden': 'true', hidden: true });
  const label = srOnly('Notifications');
  const button = h('button', {
    type: 'button', class: 'icon-button bell', 'aria-expanded': 'false', 'aria-controls': 'notifications-panel',
    id: 'notifications-button',
  }, icon('bell'), label, badge);

  const list = h('ul', { class: 'notification-list', 'aria-label': 'Notifications' });
  const alert = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const markAll = h('button', { type: 'button', class: 'small link' }, 'Mark all as read');
  const panel = h('div', {
    class: 'notifications-panel', id: 'notifications-panel', role: 'dialog', 'aria-labelledby': 'notifications-title', hidden: true,
  },
  h('header', { class: 'panel-header' }, h('h2', { id: 'notifications-title' }, 'Notifications'), markAll),
  alert, list);

  const render = coalesce(() => {
    const unread = unreadNotifications();
    const text = unread > 99 || state.notificationsUnreadMore ? '99+' : String(unread);
    badge.hidden = unread === 0;
    setText(badge, text);
    setText(label, unread ? `Notifications, ${plural(unread, 'unread', 'unread')}` : 'Notifications');
    markAll.disabled = unread === 0;
    const items = [...state.notifications.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    preserveFocus(list, () => replace(list, items.length ? items.map(item) : h('li', { class: 'empty' }, 'Nothing new.')));
  });

  function item(notification) {
    const { title, detail, conversationId } = describe(notification);
    const open = async () => {
      try {
        if (!notification.read) await notify.markRead(notification.id);
      } catch (error) {
        showAlert(error);
      }
      if (conversationId) {
        close();
        onOpenConversation(conversationId);
      }
    };
    return h('li', { class: ['notification', notification.read ? 'read' : 'unread'], dataset: { notificationId: notification.id, kind: notification.kind } },
      h('button', { type: 'button', class: 'notification-main', onclick: open, dataset: { focusKey: `n:${notification.id}` } },
        h('span', { class: 'notification-title' }, notification.read ? null : srOnly('Unread: '), title),
        detail ? h('span', { class: 'notification-detail' }, detail) : null,
        h('time', { datetime: notification.createdAt }, formatListTime(notification.createdAt))),
      notification.read ? null : h('button', {
        type: 'button', class: 'small link', dataset: { focusKey: `r:${notification.id}` },
        'aria-label': `Mark “${title}” as read`,
        onclick: () => notify.markRead(notification.id).catch(showAlert),
      }, 'Mark read'));
  }

  function showAlert(error) {
    setText(alert, describeError(error));
    alert.hidden = false;
  }

  function openPanel() {
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    (panel.querySelector('.notification-main') || markAll).focus();
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', onOutside);
  }
  function close() {
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('pointerdown', onOutside);
  }
  const onKey = (event) => {
    if (event.key === 'Escape') {
      close();
      button.focus();
    }
  };
  const onOutside = (event) => {
    if (!panel.contains(event.target) && !button.contains(event.target)) close();
  };
  button.addEventListener('click', () => (panel.hidden ? openPanel() : close()));
  markAll.addEventListener('click', () => {
    alert.hidden = true;
    notify.markAllRead().catch(showAlert);
  });

  on('notifications', render);
  on('users', render);
  render();
  return { button, panel };
}
