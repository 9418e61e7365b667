// Find people by name, see who is online and when they were last seen, manage contacts, and
// start a direct chat.
import { h, replace, coalesce, setText, preserveFocus } from '../dom.js';
import * as api from '../api.js';
import { state, on, mergeUsers } from '../state.js';
import { addContact, removeContact, user } from '../users.js';
import { displayName, formatLastSeen } from '../format.js';
import { avatar } from './names.js';

export function peoplePanel({ onMessage }) {
  const input = h('input', {
    id: 'people-search', type: 'search', name: 'query', autocomplete: 'off', maxlength: 64,
    placeholder: 'Name or username', 'aria-controls': 'people-results',
  });
  const heading = h('h2', { class: 'section-title', id: 'people-heading' }, 'Your contacts');
  const list = h('ul', { class: 'people-list', id: 'people-results', 'aria-labelledby': 'people-heading' });
  const status = h('p', { class: 'empty', role: 'status' });
  let results = null; // ids from the last search, or null to show contacts
  let query = '';
  let searchTimer = null;
  let searchSeq = 0;

  const render = coalesce(() => {
    const ids = results ?? [...state.contacts];
    setText(heading, results ? 'People' : 'Your contacts');
    preserveFocus(list, () => replace(list, ids.filter((id) => id !== state.me.id).map((id) => person(id, onMessage, status))));
    const shown = list.children.length;
    if (!shown) setText(status, results ? `No one matches “${query}”.` : 'No contacts yet. Search for people by name.');
    else if (results) setText(status, `${shown} ${shown === 1 ? 'person' : 'people'} found.`);
    else setText(status, '');
  });

  async function search() {
    query = input.value.trim();
    const mine = ++searchSeq;
    if (!query) {
      results = null;
      render();
      return;
    }
    try {
      const body = await api.users.search(query);
      if (mine !== searchSeq) return;
      mergeUsers(body.users || []);
      results = (body.users || []).map((found) => found.id);
      render();
    } catch (error) {
      if (mine === searchSeq) setText(status, api.describeError(error));
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 250);
  });
  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (event) => { event.preventDefault(); clearTimeout(searchTimer); search(); } },
    h('label', { for: 'people-search' }, 'Find people'), input);

  on('users', render);
  on('contacts', render);
  render();
  return h('div', { class: 'people' }, form, heading, status, list);
}

function person(id, onMessage, status) {
  const found = user(id) || { id };
  const name = displayName(found);
  const isContact = state.contacts.has(id);
  const presence = formatLastSeen(found);
  const act = (work) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await work();
    } catch (error) {
      setText(status, api.describeError(error));
    } finally {
      button.disabled = false;
    }
  };
  return h('li', { class: 'person', dataset: { userId: id, username: found.username } },
    avatar(name, { online: Boolean(found.online) }),
    h('span', { class: 'person-main' },
      h('span', { class: 'person-name' }, name),
      h('span', { class: 'person-meta' }, found.username ? `@${found.username}` : '', presence ? ` · ${presence}` : '')),
    h('span', { class: 'person-actions' },
      h('button', {
        type: 'button', class: 'small', 'aria-label': `Message ${name}`,
        dataset: { action: 'message', focusKey: `message:${id}` }, onclick: act(() => onMessage(id)),
      }, 'Message'),
      h('button', {
        type: 'button', class: 'small secondary', dataset: { action: 'contact', focusKey: `contact:${id}` },
        'aria-label': isContact ? `Remove ${name} from contacts` : `Add ${name} to contacts`,
        onclick: act(() => (isContact ? removeContact(id) : addContact(id))),
      }, isContact ? 'Remove contact' : 'Add contact')));
}
