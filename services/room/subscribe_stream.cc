#include "services/room/subscribe_stream.h"

#include <deque>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "roomsync/v1/roomsync.pb.h"
#include "services/room/change_subscriber.h"
#include "services/room/committed_batch.h"

namespace roomsync {
namespace {

using Event = std::shared_ptr<const v1::SubscribeEvent>;
using Reactor = grpc::ServerWriteReactor<v1::SubscribeEvent>;

// The room's side of the call. Outlives the reactor if the room still holds
// it; after Detach() it only says "gone".
class StreamSink : public ChangeSubscriber {
 public:
  StreamSink(std::string collection, size_t max_queue)
      : collection_(std::move(collection)), max_queue_(max_queue) {}

  void Attach(Reactor* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
  }

  const std::string& collection() const override { return collection_; }

  bool OnChanges(const std::shared_ptr<const CommittedBatch>& batch) override {
    Event event = batch->EventFor(collection_);
    if (event == nullptr) return Alive();
    absl::MutexLock lock(&mu_);
    if (closing_ || reactor_ == nullptr) return false;
    if (queue_.size() >= max_queue_) {
      EndLocked(MakeResync("subscriber too slow"));
      return false;
    }
    queue_.push_back(std::move(event));
    WriteNextLocked();
    return true;
  }

  void OnLive(const RoomHead& head) override {
    auto event = std::make_shared<v1::SubscribeEvent>();
    event->mutable_live()->mutable_checkpoint()->set_seq(head.last_seq);
    event->mutable_live()->mutable_checkpoint()->set_epoch(head.epoch);
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    queue_.push_back(std::move(event));
    WriteNextLocked();
  }

  void OnResync(std::string_view reason) override {
    absl::MutexLock lock(&mu_);
    EndLocked(MakeResync(reason));
  }

  void OnClose() override {
    absl::MutexLock lock(&mu_);
    EndLocked(nullptr);
  }

  // The reactor's OnWriteDone.
  void WriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {  // the client is gone; OnCancel/OnDone follow
      closing_ = true;
      queue_.clear();
    }
    WriteNextLocked();
  }

  // The reactor's OnCancel.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    queue_.clear();
    if (!writing_ && !finished_ && reactor_ != nullptr) {
      finished_ = true;
      reactor_->Finish(grpc::Status::CANCELLED);
    }
  }

  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  static Event MakeResync(std::string_view reason) {
    auto event = std::make_shared<v1::SubscribeEvent>();
    event->mutable_resync()->set_reason(std::string(reason));
    return event;
  }

  bool Alive() {
    absl::MutexLock lock(&mu_);
    return !closing_ && reactor_ != nullptr;
  }

  // Queues `last` (if any) as the final event, then ends the stream.
  void EndLocked(Event last) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closing_) return;
    closing_ = true;
    if (last != nullptr) {
      // What the client has not received yet is moot: it pulls instead.
      while (queue_.size() > (writing_ ? 1 : 0)) queue_.pop_back();
      queue_.push_back(std::move(last));
    }
    WriteNextLocked();
  }

  // gRPC never runs a reaction inline from StartWrite/Finish, so calling
  // them under our lock cannot re-enter it.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || reactor_ == nullptr) return;
    if (!queue_.empty()) {
      writing_ = true;
      reactor_->StartWrite(queue_.front().get());
    } else if (closing_) {
      finished_ = true;
      reactor_->Finish(grpc::Status::OK);
    }
  }

  const std::string collection_;
  const size_t max_queue_;
  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class SubscribeReactor final : public Reactor {
 public:
  SubscribeReactor(std::shared_ptr<Room> room, std::shared_ptr<StreamSink> sink)
      : room_(std::move(room)), sink_(std::move(sink)) {
    sink_->Attach(this);
  }

  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override {
    room_->Unsubscribe(sink_.get());
    sink_->Cancel();
  }
  void OnDone() override {
    room_->Unsubscribe(sink_.get());
    sink_->Detach();
    delete this;
  }

 private:
  std::shared_ptr<Room> room_;
  std::shared_ptr<StreamSink> sink_;
};

}  // namespace

Reactor* StartSubscribeStream(std::shared_ptr<Room> room, std::string collection,
                              std::optional<ClientCheckpoint> from, size_t max_queue) {
  auto sink = std::make_shared<StreamSink>(std::move(collection), max_queue);
  auto* reactor = new SubscribeReactor(room, sink);
  room->Subscribe(std::move(sink), std::move(from));
  return reactor;
}

}  // namespace roomsync
