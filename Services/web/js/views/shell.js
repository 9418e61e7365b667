// The signed-in screen: top bar, sidebar (chats and people), the open chat and its details.
import { h, replace, setText } from '../dom.js';
import { state, on, setOpen } from '../state.js';
import { displayName } from '../format.js';
import { tabs } from './tabs.js';
import { conversationList } from './conversation-list.js';
import { peoplePanel } from './people.js';
import { chatView } from './chat-view.js';
import { detailsPanel } from './details-panel.js';
import { openNewGroupDialog } from './new-group.js';
import { notificationsButton } from './notifications-panel.js';

export function renderShell(root, { onSignOut, onMessagePerson, navigate }) {
  const meName = h('span', { class: 'me-name' });
  const renderMe = () => setText(meName, state.me ? displayName(state.me) : '');
  on('me', renderMe);
  renderMe();

  const bell = notificationsButton({ onOpenConversation: (id) => navigate(id) });
  const signOut = h('button', { type: 'button', class: 'secondary small sign-out', onclick: onSignOut }, 'Sign out');
  const topbar = h('header', { class: 'topbar' },
    h('h1', { class: 'brand' }, 'SwiftChat'),
    h('div', { class: 'topbar-actions' }, bell.button,
      h('span', { class: 'me' }, h('span', { class: 'visually-hidden' }, 'Signed in as '), meName), signOut),
    bell.panel);

  const newGroup = h('button', {
    type: 'button', class: 'small new-group',
    onclick: () => openNewGroupDialog({ onCreated: (id) => navigate(id) }),
  }, 'New group');
  const chats = h('div', { class: 'panel' },
    h('div', { class: 'panel-toolbar' }, h('h2', { class: 'section-title' }, 'Chats'), newGroup),
    conversationList({ onOpen: () => {} }));
  // Starting a chat with someone found under People brings the list back to Chats.
  const people = h('div', { class: 'panel' }, peoplePanel({
    onMessage: async (userId) => {
      await onMessagePerson(userId);
      sideTabs.select('chats');
    },
  }));
  const sideTabs = tabs('side', [
    { id: 'chats', label: 'Chats', panel: chats },
    { id: 'people', label: 'People', panel: people },
  ], { label: 'Chats or people' });
  const sidebar = h('nav', { class: 'sidebar', 'aria-label': 'Conversations and people' }, sideTabs.list, ...sideTabs.panels);

  const chatContainer = h('div', { class: 'chat' });
  const details = h('aside', { class: 'details', id: 'details', 'aria-labelledby': 'details-title', hidden: true });
  const main = h('main', { class: 'main' }, chatContainer, details);
  const shell = h('div', { class: 'shell' }, topbar, h('div', { class: 'layout' }, sidebar, main));

  const chat = chatView(chatContainer, {
    onBack: () => navigate(null),
    onToggleDetails: () => toggleDetails(),
  });
  const info = detailsPanel(details, {
    onClose: () => toggleDetails(false),
    onLeft: () => navigate(null),
  });

  function toggleDetails(force) {
    const open = force ?? details.hidden;
    details.hidden = !open;
    info.show(open ? state.openId : null);
    chat.setDetailsExpanded(open);
    shell.dataset.details = open ? 'open' : 'closed';
    if (open) details.querySelector('button, input')?.focus();
    else chat.focusComposer();
  }

  on('open', () => {
    shell.dataset.pane = state.openId ? 'chat' : 'list';
    chat.show(state.openId);
    if (!details.hidden) {
      details.hidden = true;
      info.show(null);
      shell.dataset.details = 'closed';
    }
  });
  shell.dataset.pane = 'list';
  chat.show(null);

  replace(root, shell);
  root.removeAttribute('aria-busy');
  return { showPeople: () => sideTabs.select('people', true), setOpen };
}
