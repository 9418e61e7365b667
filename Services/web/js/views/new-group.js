// "New group": a name and the people in it (contacts, or anyone found by name).
import { h, replace, setText } from '../dom.js';
import * as api from '../api.js';
import { state, mergeUsers, upsertConversation } from '../state.js';
import { user } from '../users.js';
import { displayName } from '../format.js';
import { field, showError, clearErrors, busy } from './forms.js';

export function openNewGroupDialog({ onCreated }) {
  const selected = new Set();
  let shown = [...state.contacts];

  const nameField = field('Group name', { name: 'name', required: true, maxlength: 64, autocomplete: 'off' });
  const searchField = field('Find people', { type: 'search', name: 'query', placeholder: 'Name or username', autocomplete: 'off', maxlength: 64 });
  const choices = h('ul', { class: 'choice-list', 'aria-label': 'People' });
  const summary = h('p', { class: 'field-hint', role: 'status' }, 'No members chosen yet.');
  const alert = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h('form', { class: 'dialog-form', novalidate: true },
    h('h2', { id: 'new-group-title' }, 'New group'),
    nameField.wrapper,
    h('fieldset', { class: 'members-fieldset' },
      h('legend', {}, 'Members'),
      searchField.wrapper, choices, summary),
    alert,
    h('div', { class: 'dialog-actions' }, cancel, h('button', { type: 'submit', class: 'primary' }, 'Create group')));
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'new-group-title' }, form);

  function drawChoices() {
    const ids = [...new Set([...shown, ...selected])].filter((id) => id !== state.me.id);
    replace(choices, ids.length ? ids.map((id) => {
      const found = user(id) || { id };
      const checkboxId = `choose-${id}`;
      return h('li', { class: 'choice' },
        h('input', {
          type: 'checkbox', id: checkboxId, checked: selected.has(id), dataset: { userId: id },
          onchange: (event) => {
            if (event.target.checked) selected.add(id);
            else selected.delete(id);
            drawSummary();
          },
        }),
        h('label', { for: checkboxId }, displayName(found), found.username ? h('span', { class: 'person-meta' }, ` @${found.username}`) : null));
    }) : h('li', { class: 'empty' }, 'Search for people to add.'));
  }
  function drawSummary() {
    const names = [...selected].map((id) => displayName(user(id)));
    setText(summary, names.length ? `Chosen: ${names.join(', ')}` : 'No members chosen yet.');
  }

  let timer = null;
  searchField.input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const query = searchField.input.value.trim();
      if (!query) {
        shown = [...state.contacts];
        drawChoices();
        return;
      }
      try {
        const body = await api.users.search(query);
        mergeUsers(body.users || []);
        shown = (body.users || []).map((found) => found.id);
        drawChoices();
      } catch (error) {
        showError(alert, error);
      }
    }, 250);
  });
  searchField.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') event.preventDefault();
  });

  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(alert, { name: nameField });
    const name = nameField.input.value.trim();
    if (!name) {
      showError(alert, new api.ApiError(400, 'validation_failed', 'Give the group a name.', { name: 'Give the group a name.' }), { name: nameField });
      nameField.input.focus();
      return;
    }
    try {
      const body = await busy(form, () => api.conversations.createGroup(name, [...selected]));
      upsertConversation(body.conversation, { event: 'created' });
      dialog.close();
      onCreated(body.conversation.id);
    } catch (error) {
      showError(alert, error, { name: nameField });
    }
  });

  drawChoices();
  document.body.append(dialog);
  dialog.showModal();
  nameField.input.focus();
}
