// A chat session full of words nobody else typed, for the plaintext checks:
// two devices in one room (a password of its own), messages, an edit, a
// delete and a display name, all of them words from word(). Resolves to
// { words, ids, pages, close } once both devices show the same synced room.
import assert from 'node:assert/strict';
import { edit, newDevice, openChat, send, waitForTexts, word } from './harness.mjs';

export async function chatWithSecrets(browser, server, room) {
  const password = word('password');
  const aliceName = word('alice');
  const bobName = word('bob');
  const alice = await newDevice(browser, { name: aliceName });
  const bob = await newDevice(browser, { name: bobName });
  const a = await openChat(alice, server, { room, password });
  const b = await openChat(bob, server, { room, password });

  const said = [word('hello'), word('secret'), word('plans')];
  const ids = [];
  for (const [i, text] of said.entries()) ids.push(await send(i % 2 ? b : a, `${text} and more`));
  const edited = word('edited');
  await edit(a, ids[0], `${edited} text`);
  const deleted = word('deleted');
  const deletedId = await send(b, `${deleted} soon gone`);
  await waitForTexts(a, [`${edited} text`, `${said[1]} and more`, `${said[2]} and more`, `${deleted} soon gone`]);
  await b.click(`#messages li[data-id="${deletedId}"] button.delete`);
  const final = [`${edited} text`, `${said[1]} and more`, `${said[2]} and more`];
  await waitForTexts(a, final);
  await waitForTexts(b, final);
  const words = [password, aliceName, bobName, ...said, edited, deleted];
  assert.equal(new Set(words).size, words.length);
  return {
    words,
    ids,
    pages: [a, b],
    async close() {
      await alice.close();
      await bob.close();
    },
  };
}

/** The words of `words` found in `bytes` (a Buffer), as latin1 and as UTF-16LE. */
export function wordsIn(bytes, words) {
  const latin1 = bytes.toString('latin1');
  const utf16 = bytes.toString('utf16le');
  return words.filter((w) => latin1.includes(w) || utf16.includes(w));
}
