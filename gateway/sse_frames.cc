#include "gateway/sse_frames.h"

#include "gateway/json_codec.h"

namespace roomsync {

std::string EncodeChangeFrame(std::span<const v1::Document* const> documents,
                              const v1::Checkpoint& checkpoint, bool with_collection) {
  std::string frame;
  size_t bytes = 128;
  for (const v1::Document* document : documents) bytes += document->json().size() + 32;
  frame.reserve(bytes);
  // The epoch is JSON-escaped, so the id line cannot contain a raw newline.
  frame += "id: ";
  AppendCheckpoint(frame, checkpoint, /*with_digest=*/with_collection);
  frame += "\ndata: ";
  AppendChangesBody(frame, documents, checkpoint, with_collection);
  frame += "\n\n";
  return frame;
}

std::vector<const v1::Document*> SelectDocuments(const v1::ChangeBatch& batch,
                                                 std::string_view collection, int64_t after_seq) {
  std::vector<const v1::Document*> selected;
  selected.reserve(batch.documents_size());
  for (const v1::Document& document : batch.documents()) {
    if (document.seq() <= after_seq) continue;
    if (!collection.empty() && document.collection() != collection) continue;
    selected.push_back(&document);
  }
  return selected;
}

std::string EncodeStreamHead(
    const std::vector<std::pair<std::string_view, std::string>>& extra_headers) {
  // No Content-Length and no chunking: the body ends when the connection
  // does, so frames go out as they are, shared between sessions.
  std::string head =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\n";
  for (const auto& [name, value] : extra_headers) {
    head.append(name);
    head += ": ";
    head += value;
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

}  // namespace roomsync
