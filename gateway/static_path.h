// The file a request for the web root (--web) names: the URL path, as it
// came in, turned into a path relative to the root, or refused. Pure
// string work (no file system), so that every refusal is decided before
// anything is looked up.
#ifndef ROOMSYNC_GATEWAY_STATIC_PATH_H_
#define ROOMSYNC_GATEWAY_STATIC_PATH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace roomsync {

// `url_path` is the request target's path (no query), still
// percent-encoded. It is decoded once (so "%252e" names a file called
// "%2e"), then split on '/'. The result has no leading '/': "/" is
// "index.html", "/docs/" is "docs/index.html", "/a/b.js" is "a/b.js".
//
// kNotFound (the caller answers 404 and reveals nothing) for: a path not
// starting with '/', a malformed escape, NUL or a backslash after
// decoding, an empty segment ("/a//b"), and any segment that starts with
// '.' — which covers "." and ".." as well as hidden files (".git",
// ".env", the build's own ".roomsync-web" marker).
absl::StatusOr<std::string> StaticFilePath(std::string_view url_path);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_STATIC_PATH_H_
