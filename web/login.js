/* global document, window, fetch, FormData, HTMLFormElement */
/** The login page: posts user and password, then opens the app (the session cookie is set). */

const form = document.getElementById('login-form');
const message = document.getElementById('login-error');
if (form instanceof HTMLFormElement && message !== null) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    void fetch('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: data.get('user'), password: data.get('password') }),
    }).then((response) => {
      if (response.ok) window.location.assign('/');
      else message.textContent = 'Wrong user or password.';
    });
  });
}
