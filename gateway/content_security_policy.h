// The Content-Security-Policy of the web root's documents (--web): only
// this origin's scripts, styles, images and connections, no plugins, no
// <base>, no framing.
//
// Import maps must be inline (`<script type="importmap">`; browsers take
// no external one), and CSP treats them as inline scripts. Rather than
// 'unsafe-inline', which would let any injected <script> run, an HTML
// page's policy allows exactly the import maps the page has, by hash
// ('sha256-…' of each one's text as the browser sees it). Other inline
// scripts and inline event handlers stay blocked. A page edited on disk
// gets a new policy on its next request (the hash is computed whenever the
// file is served).
#ifndef ROOMSYNC_GATEWAY_CONTENT_SECURITY_POLICY_H_
#define ROOMSYNC_GATEWAY_CONTENT_SECURITY_POLICY_H_

#include <string>
#include <string_view>
#include <vector>

namespace roomsync {

// The policy without any hash: for documents with no inline script to
// allow (SVG images opened as documents).
std::string_view BaseContentSecurityPolicy();

// The policy of an HTML page: the base one with a hash source added to
// script-src for each inline import map of `html`.
std::string HtmlContentSecurityPolicy(std::string_view html);

// "sha256-<base64>" of each `<script type="importmap">` element's text in
// `html`, in document order. The text is hashed after the HTML parser's
// newline normalisation (CR LF and lone CR become LF), as CSP specifies.
// A script with a src attribute is skipped (an external import map is not
// supported by browsers; hashing nothing would allow nothing anyway).
std::vector<std::string> InlineImportMapHashes(std::string_view html);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_CONTENT_SECURITY_POLICY_H_
