#include "gateway/stream_catch_up.h"

#include <vector>

#include "gateway/gateway_context.h"
#include "gateway/room_fanout.h"
#include "gateway/sse_frames.h"
#include "gateway/sse_session.h"

namespace roomsync {
namespace {

// The largest page the room service serves: fewer round trips per catch-up.
constexpr int kCatchUpPageSize = 1000;

class StreamCatchUp : public std::enable_shared_from_this<StreamCatchUp> {
 public:
  StreamCatchUp(GatewayContext& context, std::shared_ptr<RoomFanout> fanout,
                std::shared_ptr<SseSession> session)
      : context_(context),
        fanout_(std::move(fanout)),
        session_(std::move(session)),
        cursor_(*session_->params().checkpoint) {}

  void PullNextPage() {
    struct Call {
      grpc::ClientContext client_context;
      v1::PullRequest request;
      v1::PullResponse response;
    };
    auto call = std::make_shared<Call>();
    call->client_context.set_deadline(context_.UnaryDeadline());
    GatewayContext::ForwardToken(call->client_context, session_->params().token);
    call->request.set_room(session_->params().room);
    call->request.set_collection(session_->params().collection);
    *call->request.mutable_checkpoint() = cursor_;
    call->request.set_batch_size(kCatchUpPageSize);
    context_.grpc_calls_in_flight.fetch_add(1);
    context_.StubFor(call->request.room())
        .async()
        ->Pull(&call->client_context, &call->request, &call->response,
               [self = shared_from_this(), call](grpc::Status status) {
                 if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
                   // The shard moved: the client's reconnect goes to the owner.
                   self->context_.LearnOwner(call->request.room(), call->client_context);
                 }
                 self->OnPage(status, call->response);
                 self->context_.grpc_calls_in_flight.fetch_sub(1);
               });
  }

 private:
  void OnPage(const grpc::Status& status, const v1::PullResponse& response) {
    if (!status.ok()) return session_->Resync("the catch-up pull failed");
    if (response.checkpoint().epoch() != cursor_.epoch()) {
      return session_->Resync("the room's epoch changed");
    }
    if (response.reset()) return session_->Resync("the checkpoint predates the room's compaction");
    const int count = response.documents_size();
    if (count > 0) {
      std::vector<const v1::Document*> documents;
      documents.reserve(count);
      for (const v1::Document& document : response.documents()) documents.push_back(&document);
      session_->SendCatchUpPage(std::make_shared<const std::string>(EncodeChangeFrame(
          documents, response.checkpoint(), session_->params().collection.empty())));
      sent_documents_ += count;
    }
    cursor_ = response.checkpoint();
    if (count < kCatchUpPageSize) return fanout_->FinishCatchUp(session_->id(), cursor_.seq());
    if (sent_documents_ >= context_.config.max_sse_catch_up_documents) {
      return session_->Resync("the catch-up is larger than the stream serves");
    }
    // Flow control: the next page waits until the client has taken this
    // one, so a catching-up session holds at most one page.
    session_->WhenWritable([self = shared_from_this()] { self->PullNextPage(); });
  }

  GatewayContext& context_;
  const std::shared_ptr<RoomFanout> fanout_;
  const std::shared_ptr<SseSession> session_;
  v1::Checkpoint cursor_;
  size_t sent_documents_ = 0;
};

}  // namespace

void StartStreamCatchUp(GatewayContext& context, std::shared_ptr<RoomFanout> fanout,
                        std::shared_ptr<SseSession> session) {
  std::make_shared<StreamCatchUp>(context, std::move(fanout), std::move(session))
      ->PullNextPage();
}

}  // namespace roomsync
