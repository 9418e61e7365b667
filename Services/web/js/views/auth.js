// Sign in (username or email) and sign up.
import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { tabs } from './tabs.js';
import { field, showError, clearErrors, busy } from './forms.js';

export function renderAuth(root, { notice = null, onSignedIn }) {
  const signIn = signInForm(onSignedIn);
  const signUp = signUpForm(onSignedIn);
  const switcher = tabs('auth', [
    { id: 'signin', label: 'Sign in', panel: signIn },
    { id: 'signup', label: 'Create account', panel: signUp },
  ], { label: 'Sign in or create an account' });

  replace(root, h('section', { class: 'auth', 'aria-labelledby': 'auth-title' },
    h('div', { class: 'auth-card' },
      h('h1', { id: 'auth-title', class: 'brand' }, 'SwiftChat'),
      h('p', { class: 'tagline' }, 'Chat with the people you know, in real time.'),
      h('p', { class: 'notice', role: 'status', hidden: !notice }, notice || ''),
      switcher.list,
      ...switcher.panels,
    ),
  ));
  root.removeAttribute('aria-busy');
  signIn.querySelector('input').focus();
}

/**
 * Shows `notice` (or none) on the sign-in screen already on screen, leaving what is typed alone.
 * Returns false when the sign-in screen is not shown.
 */
export function setAuthNotice(root, notice) {
  const line = root.querySelector('.auth .notice');
  if (!line) return false;
  line.textContent = notice || '';
  line.hidden = !notice;
  return true;
}

function signInForm(onSignedIn) {
  const login = field('Username or email', { name: 'login', autocomplete: 'username', required: true, maxlength: 254 });
  const password = field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const alert = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const fields = { login, password };
  const form = h('form', { class: 'auth-form', 'aria-label': 'Sign in', novalidate: true },
    login.wrapper, password.wrapper, alert,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(alert, fields);
    if (!login.input.value.trim() || !password.input.value) {
      showError(alert, new api.ApiError(400, 'validation_failed', 'Enter your username or email and your password.'));
      return;
    }
    try {
      const body = await busy(form, () => api.auth.signIn(login.input.value.trim(), password.input.value));
      onSignedIn(body.user);
    } catch (error) {
      showError(alert, error, fields);
      password.input.focus();
    }
  });
  return form;
}

function signUpForm(onSignedIn) {
  const username = field('Username', {
    name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32,
    autocapitalize: 'none', spellcheck: 'false',
  }, '3 to 32 characters: lowercase letters, digits, _ and .');
  const email = field('Email', { name: 'email', type: 'email', autocomplete: 'email', required: true });
  const password = field('Password', {
    name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 128,
  }, 'At least 8 characters.');
  const alert = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const fields = { username, email, password };
  const form = h('form', { class: 'auth-form', 'aria-label': 'Create account', novalidate: true },
    username.wrapper, email.wrapper, password.wrapper, alert,
    h('button', { type: 'submit', class: 'primary' }, 'Create account'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(alert, fields);
    try {
      const body = await busy(form, () =>
        api.auth.signUp(username.input.value.trim().toLowerCase(), email.input.value.trim(), password.input.value));
      onSignedIn(body.user);
    } catch (error) {
      showError(alert, error, fields);
    }
  });
  return form;
}
