// Registers the app-shell service worker (sw.js) where the browser allows it
// (a secure context: https, or http on localhost / 127.0.0.1).
//
// The first visit loads its files before the worker controls the page, so
// the worker has seen none of them: once the page has loaded, it is told
// which of this origin's files the page used (the page itself, its
// modules, TinyBase, the style sheet) and keeps a copy, so that even the
// first reload without a network opens the chat.
const API = /^\/(v1|api)\/|^\/(healthz|readyz|metrics)$/;

function shellUrls() {
  const urls = new Set([location.pathname]);
  for (const entry of performance.getEntriesByType('resource')) {
    const url = new URL(entry.name);
    if (url.origin === location.origin && !API.test(url.pathname)) urls.add(url.pathname + url.search);
  }
  return [...urls];
}

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker
    .register('/sw.js')
    .then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      const send = () => registration.active?.postMessage({ t: 'keep', urls: shellUrls() });
      if (document.readyState === 'complete') send();
      else window.addEventListener('load', send, { once: true });
    })
    .catch((error) => console.warn('service worker not registered:', error.message));
}
