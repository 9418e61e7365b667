// Group info (rename, members with admins marked, add, remove, promote, leave) and contact info.
// The forms are built once per conversation and only their contents follow live changes, so a
// presence frame never wipes what someone is typing.
import { h, replace, setText, coalesce, preserveFocus } from '../dom.js';
import * as api from '../api.js';
import { state, on, conversation, upsertConversation, markLeft, mergeUsers, emit } from '../state.js';
import { user, addContact, removeContact } from '../users.js';
import { displayName, formatLastSeen } from '../format.js';
import { avatar, isMe, nameOf, otherMemberId } from './names.js';
import { field, showError, clearErrors, busy } from './forms.js';

export function detailsPanel(container, { onClose, onLeft }) {
  let unsubscribe = [];
  const alert = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const status = h('p', { class: 'visually-hidden', role: 'status' });

  // Runs a button's action: errors go to the alert, success is announced.
  const act = (work, success) => async (event) => {
    const button = event?.currentTarget;
    clearErrors(alert);
    if (button) button.disabled = true;
    try {
      await work();
      if (success) setText(status, success);
    } catch (error) {
      showError(alert, error);
    } finally {
      if (button) button.disabled = false;
    }
  };

  function show(id) {
    unsubscribe.forEach((off) => off());
    unsubscribe = [];
    clearErrors(alert);
    if (!id) {
      replace(container);
      return;
    }
    const target = conversation(id);
    if (!target) return;
    const close = h('button', { type: 'button', class: 'icon-button close', 'aria-label': 'Close details', onclick: onClose }, '×');
    const isGroup = target.type === 'group';
    const body = isGroup ? groupDetails(id) : directDetails(id);
    replace(container, h('div', { class: 'details-inner' },
      h('header', { class: 'details-header' }, h('h2', { id: 'details-title' }, isGroup ? 'Group info' : 'Contact info'), close),
      body.element, alert, status));
    const render = coalesce(() => body.update());
    unsubscribe = [on('conversation:' + id, render), on('users', render), on('contacts', render), on('features', render)];
    body.update();
  }

  // ------------------------------------------------------------------------------- direct chat

  function directDetails(id) {
    const element = h('div', { class: 'profile' });
    const update = () => preserveFocus(element, () => {
      const target = conversation(id);
      const other = target && otherMemberId(target);
      if (!other) {
        replace(element, h('p', {}, 'No one else is here.'));
        return;
      }
      const found = user(other) || { id: other };
      const name = displayName(found);
      const isContact = state.contacts.has(other);
      replace(element,
        avatar(name, { online: Boolean(found.online), extra: 'large' }),
        h('p', { class: 'profile-name' }, name),
        found.username ? h('p', { class: 'profile-username' }, `@${found.username}`) : null,
        h('p', { class: 'profile-presence' }, formatLastSeen(found)),
        found.about ? h('p', { class: 'profile-about' }, found.about) : null,
        found.deleted ? null : h('button', {
          type: 'button', class: 'secondary', dataset: { focusKey: 'contact' },
          onclick: act(() => (isContact ? removeContact(other) : addContact(other)),
            isContact ? `${name} removed from contacts.` : `${name} added to contacts.`),
        }, isContact ? 'Remove from contacts' : 'Add to contacts'));
    });
    return { element, update };
  }

  // ------------------------------------------------------------------------------- group

  function groupDetails(id) {
    const nameField = field('Group name', { name: 'name', maxlength: 64, required: true, autocomplete: 'off' });
    let nameDirty = false;
    nameField.input.addEventListener('input', () => { nameDirty = true; });
    const rename = h('form', { class: 'inline-form', 'aria-label': 'Rename group' },
      nameField.wrapper, h('button', { type: 'submit', class: 'small' }, 'Rename'));
    rename.addEventListener('submit', async (event) => {
      event.preventDefault();
      const name = nameField.input.value.trim();
      if (!name) return;
      clearErrors(alert, { name: nameField });
      try {
        const body = await busy(rename, () => api.conversations.rename(id, name));
        nameDirty = false;
        upsertConversation(body.conversation, { event: 'renamed' });
        setText(status, `Group renamed to ${name}.`);
      } catch (error) {
        showError(alert, error, { name: nameField });
      }
    });
    const plainName = h('p', { class: 'profile-name' });
    const membersTitle = h('h3', { id: 'members-title' });
    const members = h('ul', { class: 'member-list', 'aria-labelledby': 'members-title' });
    const addMember = addMemberForm(id);
    const leaveButton = h('button', { type: 'button', class: 'danger leave-button', onclick: act(() => leave(id)) }, 'Leave group');
    const element = h('div', { class: 'group-details' }, rename, plainName, membersTitle, members, addMember, leaveButton);

    function update() {
      const target = conversation(id);
      if (!target) return;
      const amAdmin = target.members.get(state.me.id)?.role === 'admin' && !target.left;
      rename.hidden = !amAdmin;
      plainName.hidden = amAdmin;
      setText(plainName, target.name || 'Unnamed group');
      if (!nameDirty && document.activeElement !== nameField.input) nameField.input.value = target.name || '';
      addMember.hidden = !amAdmin;
      leaveButton.hidden = target.left;
      const list = [...target.members.values()].sort((a, b) =>
        (a.role === 'admin' ? 0 : 1) - (b.role === 'admin' ? 0 : 1) || nameOf(a.userId).localeCompare(nameOf(b.userId)));
      setText(membersTitle, `Members (${list.length})`);
      preserveFocus(members, () => replace(members, list.map((member) => memberRow(target, member, amAdmin))));
    }
    return { element, update };
  }

  function memberRow(target, member, amAdmin) {
    const found = user(member.userId);
    const name = member.deleted ? 'Deleted account' : isMe(member.userId) ? `${displayName(found)} (you)` : nameOf(member.userId);
    const buttons = [];
    if (amAdmin && !isMe(member.userId)) {
      if (state.features.roles) {
        const promote = member.role !== 'admin';
        buttons.push(h('button', {
          type: 'button', class: 'small secondary', dataset: { focusKey: `role:${member.userId}` },
          'aria-label': promote ? `Make ${name} an admin` : `Dismiss ${name} as admin`,
          onclick: act(() => setRole(target, member.userId, promote ? 'admin' : 'member'),
            promote ? `${name} is now an admin.` : `${name} is no longer an admin.`),
        }, promote ? 'Make admin' : 'Dismiss as admin'));
      }
      buttons.push(h('button', {
        type: 'button', class: 'small danger', dataset: { focusKey: `remove:${member.userId}` },
        'aria-label': `Remove ${name} from the group`,
        onclick: act(() => removeMember(target, member.userId), `${name} removed.`),
      }, 'Remove'));
    }
    return h('li', { class: 'member', dataset: { userId: member.userId, role: member.role } },
      avatar(name, { online: Boolean(found?.online) }),
      h('span', { class: 'member-main' },
        h('span', { class: 'member-name' }, name),
        member.role === 'admin' ? h('span', { class: 'badge admin-badge' }, 'Admin') : null),
      buttons.length ? h('span', { class: 'member-actions' }, buttons) : null);
  }

  function addMemberForm(id) {
    const search = field('Add a member', { type: 'search', name: 'query', placeholder: 'Name or username', autocomplete: 'off', maxlength: 64 });
    const results = h('ul', { class: 'people-list compact', 'aria-label': 'People to add' });
    let timer = null;
    const run = async () => {
      const query = search.input.value.trim();
      const target = conversation(id);
      if (!query || !target) {
        replace(results);
        return;
      }
      try {
        const body = await api.users.search(query);
        mergeUsers(body.users || []);
        const candidates = (body.users || []).filter((u) => !target.members.has(u.id));
        replace(results, candidates.length ? candidates.map((u) => h('li', { class: 'person' },
          avatar(displayName(u), { online: Boolean(u.online) }),
          h('span', { class: 'person-main' }, h('span', { class: 'person-name' }, displayName(u)),
            h('span', { class: 'person-meta' }, `@${u.username}`)),
          h('button', {
            type: 'button', class: 'small', 'aria-label': `Add ${displayName(u)} to the group`,
            onclick: act(async () => {
              const added = await api.conversations.addMember(id, u.id);
              upsertConversation(added.conversation, { event: 'member_added' });
              search.input.value = '';
              replace(results);
              search.input.focus();
            }, `${displayName(u)} added.`),
          }, 'Add'))) : h('li', { class: 'empty' }, 'No one to add.'));
      } catch (error) {
        showError(alert, error);
      }
    };
    search.input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(run, 250);
    });
    return h('form', { class: 'add-member', role: 'search', onsubmit: (event) => { event.preventDefault(); run(); } },
      search.wrapper, results);
  }

  // ------------------------------------------------------------------------------- actions

  async function setRole(target, userId, role) {
    try {
      const body = await api.conversations.setRole(target.id, userId, role);
      if (body?.conversation) upsertConversation(body.conversation, { event: 'role_changed' });
      else await refresh(target.id);
    } catch (error) {
      // A 404/405 for a member we can see in a group we administer means the server does not offer
      // role changes yet: hide the control for this session instead of failing every time.
      if (error.status === 405 || error.status === 404) {
        state.features.roles = false;
        emit('features');
        throw new api.ApiError(error.status, 'unsupported', 'Changing admins is not available on this server yet.');
      }
      throw error;
    }
  }

  async function refresh(id) {
    const details = await api.conversations.get(id);
    upsertConversation(details.conversation, { details: true });
  }

  async function removeMember(target, userId) {
    await api.conversations.removeMember(target.id, userId);
    await refresh(target.id);
  }

  async function leave(id) {
    await api.conversations.removeMember(id, state.me.id);
    markLeft(id);
    onLeft?.(id);
  }

  return { show };
}
