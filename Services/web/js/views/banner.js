// A clear banner while a stream is (re)connecting; the page root also carries each stream's state
// (data-chat-stream, data-notifications-stream) for styling and for the browser tests.
import { setText } from '../dom.js';
import { state, on } from '../state.js';

export function connectionBanner(element) {
  const render = () => {
    const { chat, notifications } = state.streams;
    document.documentElement.dataset.chatStream = chat;
    document.documentElement.dataset.notificationsStream = notifications;
    const down = [];
    if (chat === 'reconnecting') down.push('chat');
    if (notifications === 'reconnecting') down.push('notifications');
    const text = down.length
      ? `Connection lost. Reconnecting ${down.join(' and ')}… Messages you send now will go out when it is back.`
      : '';
    element.hidden = down.length === 0;
    element.classList.toggle('warning', down.length > 0);
    setText(element, text);
  };
  on('streams', render);
  render();
}

export function clearBanner(element) {
  element.hidden = true;
  setText(element, '');
  document.documentElement.dataset.chatStream = 'closed';
  document.documentElement.dataset.notificationsStream = 'closed';
}
