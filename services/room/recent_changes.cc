#include "services/room/recent_changes.h"

#include <algorithm>

namespace roomsync {

std::string RecentChanges::KeyOf(const StoredDocument& doc) {
  std::string key;
  key.reserve(doc.collection.size() + 1 + doc.id.size());
  key.append(doc.collection).push_back('\0');  // names cannot contain NUL
  key.append(doc.id);
  return key;
}

void RecentChanges::Reset(Seq head) {
  entries_.clear();
  newest_seq_.clear();
  bytes_ = 0;
  floor_ = head;
}

void RecentChanges::Append(const std::vector<SharedDocument>& documents) {
  for (const SharedDocument& doc : documents) {
    auto [it, inserted] = newest_seq_.try_emplace(KeyOf(*doc), doc->seq);
    if (!inserted) {
      Seq older = it->second;
      it->second = doc->seq;
      auto entry = std::lower_bound(entries_.begin(), entries_.end(), older,
                                    [](const Entry& e, Seq seq) { return e.doc->seq < seq; });
      if (entry != entries_.end() && entry->doc->seq == older) entry->superseded = true;
    }
    entries_.push_back(Entry{doc});
    bytes_ += doc->json.size();
  }
  while (!entries_.empty() && (entries_.size() > max_entries_ || bytes_ > max_bytes_)) {
    EvictFront();
  }
}

void RecentChanges::EvictFront() {
  const Entry& front = entries_.front();
  if (!front.superseded) newest_seq_.erase(KeyOf(*front.doc));
  bytes_ -= front.doc->json.size();
  floor_ = front.doc->seq;
  entries_.pop_front();
}

std::vector<SharedDocument> RecentChanges::ReadSince(Seq after, std::string_view collection,
                                                     size_t limit) const {
  std::vector<SharedDocument> out;
  auto first = std::upper_bound(entries_.begin(), entries_.end(), after,
                                [](Seq seq, const Entry& e) { return seq < e.doc->seq; });
  for (auto it = first; it != entries_.end() && out.size() < limit; ++it) {
    if (it->superseded) continue;
    if (!collection.empty() && it->doc->collection != collection) continue;
    out.push_back(it->doc);
  }
  return out;
}

}  // namespace roomsync
