// Registers the app-shell service worker (sw.js) where the browser allows it
// (a secure context: https, or http on localhost / 127.0.0.1).
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js').catch((error) => console.warn('service worker not registered:', error.message));
}
