// Form fields with labels and error messages wired for screen readers, and the API's
// validation errors ("fields") shown next to the fields they are about.
import { h, setText } from '../dom.js';
import { describeError } from '../api.js';

let counter = 0;

/** A labelled input; returns {wrapper, input, error}. */
export function field(label, attributes = {}, hint = null) {
  const id = attributes.id || `field-${++counter}`;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hintElement = hint ? h('p', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  const tag = attributes.tag || 'input';
  const input = h(tag, {
    ...attributes,
    tag: null,
    id,
    'aria-describedby': [hintElement ? hintElement.id : null, error.id].filter(Boolean).join(' '),
  });
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintElement, error);
  return { wrapper, input, error };
}

/** Shows an error: field errors next to their fields, the rest in the form's alert. */
export function showError(alert, error, fields = {}) {
  clearErrors(alert, fields);
  const fieldErrors = error && error.fields ? error.fields : {};
  let shown = false;
  for (const [name, message] of Object.entries(fieldErrors)) {
    const target = fields[name];
    if (!target) continue;
    target.input.setAttribute('aria-invalid', 'true');
    setText(target.error, message);
    target.error.hidden = false;
    shown = true;
  }
  const text = describeError(error);
  setText(alert, shown && error.code === 'validation_failed' ? 'Please correct the highlighted fields.' : text);
  alert.hidden = false;
}

export function clearErrors(alert, fields = {}) {
  alert.hidden = true;
  setText(alert, '');
  for (const target of Object.values(fields)) {
    target.input.removeAttribute('aria-invalid');
    target.error.hidden = true;
    setText(target.error, '');
  }
}

/** Disables a form's controls while `work` runs. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll('button, input, textarea, select')];
  const previous = controls.map((control) => control.disabled);
  controls.forEach((control) => { control.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    controls.forEach((control, index) => { control.disabled = previous[index]; });
    form.removeAttribute('aria-busy');
  }
}
