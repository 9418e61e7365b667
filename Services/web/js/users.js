// Profiles by id, fetched once and kept fresh by presence frames and search results.
import * as api from './api.js';
import { isTransient } from './retry.js';
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

/**
 * Fetches a profile (with online and lastSeenAt) unless one is on its way or fresh. Never rejects:
 * resolves to the failure, if it failed (a 404 marks the user deleted and is none), else null.
 */
export function ensureUser(id, { force = false } = {}) {
  if (loading.has(id)) return loading.get(id);
  if (!force && Date.now() - (fetchedAt.get(id) || 0) < FRESH_MS) return Promise.resolve(null);
  const request = api.users
    .get(id)
    .then((body) => {
      mergeUser(body.user);
      return null;
    })
    .catch((error) => {
      if (error.status !== 404) return error;
      mergeUser({ id, deleted: true });
      return null;
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
  const peers = peerIds.filter((id) => !state.contacts.has(id)).slice(0, 50);
  const failures = await Promise.all(peers.map((id) => ensureUser(id, { force: true })));
  // One peer's profile that could not be fetched for now fails the refresh, so it is tried again.
  const transient = failures.find((failure) => failure && isTransient(failure));
  if (transient) throw transient;
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
