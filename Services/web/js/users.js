// Profiles by id, fetched once and kept fresh by presence frames and search results.
import * as api from './api.js';
import { state, mergeUser, setContacts, setContact } from './state.js';

const loading = new Map(); // id → promise
const fetchedAt = new Map(); // id → time of the last answer
const FRESH_MS = 30000;

/** The user if known; otherwise undefined, and a fetch is started (views re-render on 'users'). */
export function user(id) {
  const known = state.users.get(id);
  if (!known || (!known.username && !known.deleted)) ensureUser(id);
  return known;
}

/** Fetches a profile (with online and lastSeenAt) unless one is on its way or fresh. */
export function ensureUser(id, { force = false } = {}) {
  if (loading.has(id)) return loading.get(id);
  if (!force && Date.now() - (fetchedAt.get(id) || 0) < FRESH_MS) return Promise.resolve();
  const request = api.users
    .get(id)
    .then((body) => mergeUser(body.user))
    .catch((error) => {
      if (error.status === 404) mergeUser({ id, deleted: true });
    })
    .finally(() => {
      loading.delete(id);
      fetchedAt.set(id, Date.now());
    });
  loading.set(id, request);
  return request;
}

/**
 * Presence frames only flow for people who share a conversation or a contact with me, so when a
 * conversation is new to me (or opened), its members' current presence is fetched once.
 */
export function refreshMembers(memberIds) {
  const me = state.me?.id;
  return Promise.all(memberIds.filter((id) => id !== me).slice(0, 50).map((id) => ensureUser(id, { force: true })));
}

/**
 * After the notification stream (re)connects, presence it missed is fetched again: the contacts
 * (their list carries presence) and the people of my direct chats.
 */
export async function refreshPresence(peerIds) {
  await loadContacts();
  await Promise.all(peerIds.filter((id) => !state.contacts.has(id)).slice(0, 50).map((id) => ensureUser(id, { force: true })));
}

export async function loadContacts() {
  const body = await api.users.contacts();
  setContacts(body.contacts || []);
}

export async function addContact(userId) {
  const body = await api.users.addContact(userId);
  if (body?.contact) mergeUser(body.contact);
  setContact(userId, true);
}

export async function removeContact(userId) {
  await api.users.removeContact(userId);
  setContact(userId, false);
}
