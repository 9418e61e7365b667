// Dates and names as people read them.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long' });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const shortDateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });

const startOfDay = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
const DAY = 24 * 60 * 60 * 1000;

export const toDate = (value) => (value instanceof Date ? value : new Date(value));
export const formatTime = (value) => timeFormat.format(toDate(value));
export const dayKey = (value) => startOfDay(toDate(value));

function daysAgo(value) {
  return Math.round((startOfDay(new Date()) - startOfDay(toDate(value))) / DAY);
}

/** "Today", "Yesterday", a weekday within the week, else the date. */
export function formatDay(value) {
  const days = daysAgo(value);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return dayFormat.format(toDate(value));
  return dateFormat.format(toDate(value));
}

/** For the conversation list: a time today, "Yesterday", else a short date. */
export function formatListTime(value) {
  const days = daysAgo(value);
  if (days === 0) return formatTime(value);
  if (days === 1) return 'Yesterday';
  if (days > 1 && days < 7) return dayFormat.format(toDate(value));
  return shortDateFormat.format(toDate(value));
}

export function formatLastSeen(user) {
  if (!user) return '';
  if (user.deleted) return 'Deleted account';
  if (user.online) return 'online';
  if (!user.lastSeenAt) return 'offline';
  const days = daysAgo(user.lastSeenAt);
  const time = formatTime(user.lastSeenAt);
  if (days === 0) return `last seen today at ${time}`;
  if (days === 1) return `last seen yesterday at ${time}`;
  return `last seen ${shortDateFormat.format(toDate(user.lastSeenAt))} at ${time}`;
}

export function displayName(user) {
  if (!user) return 'Someone';
  if (user.deleted) return 'Deleted account';
  return user.displayName || user.username || 'Someone';
}

export const initial = (name) => (Array.from((name || '?').trim())[0] || '?').toUpperCase();

export const plural = (count, one, many) => `${count} ${count === 1 ? one : many}`;
