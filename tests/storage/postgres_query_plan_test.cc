// The plans PostgreSQL picks for the store's statements on a database
// without statistics: a new deployment, before autovacuum's first ANALYZE.
// There the planner sees every index as equally cheap; before migration 3
// it served the key lookup of every push from (room, collection, seq),
// reading the room's whole collection (0.55 ms per push at 6,000
// documents). Each statement runs seven times, so that the plan checked is
// the cached generic plan a pooled connection ends up with.
// The suite is named Store* so that `ctest -R Store` runs it.
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "storage/postgres_statements.h"
#include "tests/storage/store_conformance.h"
#include "tests/support/pg_harness.h"

namespace roomsync {
namespace {

namespace sql = storage_internal::postgres_sql;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kDocuments = 4000;

// EXPLAIN of the generic plan of `statement` run with `args`.
template <typename... Args>
std::string GenericPlan(pqxx::connection& conn, const std::string& name, const char* statement,
                        Args&&... args) {
  conn.prepare(name, statement);
  pqxx::nontransaction tx(conn);
  for (int i = 0; i < 6; ++i) tx.exec_prepared(name, args...);
  // EXPLAIN EXECUTE needs literal arguments; the plan is the cached one.
  std::string explain = "EXPLAIN EXECUTE " + name + "(";
  bool first = true;
  ((explain += (first ? "" : ", ") + tx.quote(args), first = false), ...);
  explain += ")";
  std::string plan;
  for (const pqxx::row& row : tx.exec(explain)) plan += std::string(row[0].c_str()) + "\n";
  return plan;
}

class StorePostgresPlans : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::CreateTestDatabase();
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenStore(url_));
    ASSERT_OK_AND_ASSIGN(RoomHead head, store->OpenRoom("room"));
    Seq seq = head.last_seq;
    for (int batch = 0; batch < kDocuments / 500; ++batch) {
      std::vector<StoredDocument> docs;
      for (int i = 0; i < 500; ++i) {
        ++seq;
        docs.push_back(StoredDocument{seq % 10 == 0 ? "other" : "messages",
                                      "m" + std::to_string(seq), 1700000000000 + seq, false,
                                      seq, std::string(300, 'x')});
      }
      ASSERT_OK(store->Commit("room", CommitFence{seq - 500}, docs, 0));
    }
    conn_ = std::make_unique<pqxx::connection>(url_);
    pqxx::nontransaction tx(*conn_);
    // The premise: no statistics yet.
    ASSERT_EQ(tx.exec("SELECT count(*) FROM pg_stats WHERE tablename = 'documents'")[0][0]
                  .as<int>(),
              0);
  }

  std::string url_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(StorePostgresPlans, LookupUsesThePrimaryKey) {
  std::string plan = GenericPlan(*conn_, "lookup", sql::kLookupSql, std::string("room"),
                                 std::string("{messages}"), std::string("{m17}"));
  EXPECT_THAT(plan, HasSubstr("documents_pkey")) << plan;
  EXPECT_THAT(plan, Not(HasSubstr("documents_room_collection_seq"))) << plan;
  EXPECT_THAT(plan, Not(HasSubstr("Seq Scan"))) << plan;
}

TEST_F(StorePostgresPlans, ReadsUseTheSeqIndexes) {
  const std::string room = "room";
  const int64_t position = 100, limit = 50;
  std::string plan =
      GenericPlan(*conn_, "since_collection", sql::kSinceCollectionSql, room, position, limit,
                  std::string("messages"));
  EXPECT_THAT(plan, HasSubstr("documents_room_collection_seq")) << plan;
  plan = GenericPlan(*conn_, "since_all", sql::kSinceAllSql, room, position, limit);
  EXPECT_THAT(plan, HasSubstr("documents_room_seq")) << plan;
  plan = GenericPlan(*conn_, "before_collection", sql::kBeforeCollectionSql, room,
                     int64_t{3000}, limit, std::string("messages"));
  EXPECT_THAT(plan, HasSubstr("Backward using documents_room_collection_seq")) << plan;
  plan = GenericPlan(*conn_, "before_all", sql::kBeforeAllSql, room, int64_t{3000}, limit);
  EXPECT_THAT(plan, HasSubstr("Backward using documents_room_seq")) << plan;
}

}  // namespace
}  // namespace roomsync
