// Building DOM without innerHTML: every string lands in a text node or an attribute, so no user
// text is ever parsed as HTML.

/**
 * h('button', {class: 'x', type: 'button', onclick: fn, dataset: {id}}, 'text', child, ...)
 * Attributes whose value is null, undefined or false are left out; `true` sets an empty one.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      for (const [key, data] of Object.entries(value)) {
        if (data !== null && data !== undefined) element.dataset[key] = String(data);
      }
    } else if (name === 'class') {
      element.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces an element's children. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** Sets text only when it changed (keeps screen readers and selection calm). */
export function setText(element, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (element.textContent !== value) element.textContent = value;
}

/** Text that only screen readers announce. */
export const srOnly = (text) => h('span', { class: 'visually-hidden' }, text);

/** Coalesces several calls within one task into one run, after the current task. */
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      fn();
    });
  };
}

let uid = 0;
export const uniqueId = (prefix) => `${prefix}-${++uid}`;

/**
 * Runs `update` (which rebuilds part of `container`) and gives the focus back to the element with
 * the same data-focus-key, so live re-renders never steal a keyboard user's place.
 */
export function preserveFocus(container, update) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : null;
  update();
  if (key) container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}
