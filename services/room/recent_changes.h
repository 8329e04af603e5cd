// A room's most recent committed changes, kept in memory so that stream
// catch-ups and hot pulls are answered without a store query. Bounded in
// entries and bytes. Not thread-safe: the owning Room guards it.
#ifndef ROOMSYNC_SERVICES_ROOM_RECENT_CHANGES_H_
#define ROOMSYNC_SERVICES_ROOM_RECENT_CHANGES_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "storage/store.h"

namespace roomsync {

using SharedDocument = std::shared_ptr<const StoredDocument>;

class RecentChanges {
 public:
  RecentChanges(size_t max_entries, size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // Forgets everything; the cache then covers only changes after `head`.
  void Reset(Seq head);

  // Appends committed documents (ascending seqs, all above the last one).
  void Append(const std::vector<SharedDocument>& documents);

  // True when every change with seq > `after` is in the cache, so a read
  // from `after` gives exactly what the store would.
  bool Covers(Seq after) const { return after >= floor_; }

  // Like Store::ReadSince: up to `limit` documents with seq > `after` in
  // seq order, each only at its newest seq. Requires Covers(after).
  std::vector<SharedDocument> ReadSince(Seq after, std::string_view collection,
                                        size_t limit) const;

  Seq floor() const { return floor_; }

 private:
  static std::string KeyOf(const StoredDocument& doc);
  void EvictFront();

  const size_t max_entries_;
  const size_t max_bytes_;
  struct Entry {
    SharedDocument doc;
    // A newer entry of the same key exists: reads skip this one. Marked at
    // append time so that reads build no keys.
    bool superseded = false;
  };
  std::deque<Entry> entries_;  // ascending seq
  // The newest seq of every key in entries_.
  absl::flat_hash_map<std::string, Seq> newest_seq_;
  size_t bytes_ = 0;
  // Every change with seq > floor_ is in entries_.
  Seq floor_ = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_RECENT_CHANGES_H_
