// Accessible tabs (WAI-ARIA tabs pattern): arrow keys move between tabs, one tab stop.
import { h } from '../dom.js';

/**
 * tabs('auth', [{id: 'signin', label: 'Sign in', panel: element}, ...], {onChange})
 * Returns {list, panels, select(id)}.
 */
export function tabs(name, entries, { label, onChange } = {}) {
  const buttons = new Map();
  const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': label || null });
  for (const entry of entries) {
    const button = h('button', {
      type: 'button',
      role: 'tab',
      id: `${name}-tab-${entry.id}`,
      'aria-controls': `${name}-panel-${entry.id}`,
      onclick: () => select(entry.id, true),
      onkeydown: (event) => onKey(event, entry.id),
    }, entry.label);
    buttons.set(entry.id, button);
    list.append(button);
    entry.panel.id = `${name}-panel-${entry.id}`;
    entry.panel.setAttribute('role', 'tabpanel');
    entry.panel.setAttribute('aria-labelledby', button.id);
  }

  function select(id, focus = false) {
    for (const entry of entries) {
      const active = entry.id === id;
      const button = buttons.get(entry.id);
      button.setAttribute('aria-selected', String(active));
      button.tabIndex = active ? 0 : -1;
      entry.panel.hidden = !active;
      if (active && focus) button.focus();
    }
    onChange?.(id);
  }

  function onKey(event, id) {
    const ids = entries.map((entry) => entry.id);
    const index = ids.indexOf(id);
    let next = null;
    if (event.key === 'ArrowRight') next = ids[(index + 1) % ids.length];
    else if (event.key === 'ArrowLeft') next = ids[(index - 1 + ids.length) % ids.length];
    else if (event.key === 'Home') next = ids[0];
    else if (event.key === 'End') next = ids[ids.length - 1];
    if (next) {
      event.preventDefault();
      select(next, true);
    }
  }

  select(entries[0].id);
  return { list, panels: entries.map((entry) => entry.panel), select };
}
