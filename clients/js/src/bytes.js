// Byte helpers shared by the crypto and storage layers. No dependencies, so
// the same code runs in browsers and in Node's test runner.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** @param {string} text @returns {Uint8Array} */
export const utf8 = (text) => encoder.encode(text);

/** @param {BufferSource} bytes @returns {string} throws on invalid UTF-8 */
export const fromUtf8 = (bytes) => decoder.decode(bytes);

/** Standard base64 (RFC 4648 §4) of `bytes`. @param {Uint8Array} bytes */
export function toBase64(bytes) {
  let binary = '';
  // Chunks keep String.fromCharCode's argument list bounded.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** @param {string} text base64 @returns {Uint8Array} throws on bad input */
export function fromBase64(text) {
  if (typeof text !== 'string') throw new TypeError('base64 text expected');
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Lower-case hex of `bytes`. @param {Uint8Array} bytes */
export const toHex = (bytes) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
