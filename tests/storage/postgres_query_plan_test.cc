// The plans PostgreSQL uses for the store's statements on a new database:
// no statistics until autovacuum's first ANALYZE, and generic plans cached
// by each pooled connection, possibly while the table was still empty.
// Both hazards were real: the key lookup of every push read the room's
// whole collection through (room, collection, seq) (no statistics), and a
// lookup plan cached on the empty table read every row of the room and
// hash-joined the keys; either cost grew with the room (3,400 instead of
// 10,900 pushes/s at 18,000 documents). Migration 3 and the LATERAL lookup
// leave each statement one sensible plan; this checks it both ways.
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

// One statement with its arguments, prepared on a connection that always
// uses the generic plan (what PostgreSQL settles on after five runs).
struct Statement {
  std::string name;
  const char* sql;
  std::vector<std::string> args;  // literals, as EXPLAIN EXECUTE wants them
};

// "EXECUTE name('arg', ...)".
std::string Execute(pqxx::transaction_base& tx, const Statement& statement) {
  std::string execute = "EXECUTE " + statement.name + "(";
  for (size_t i = 0; i < statement.args.size(); ++i) {
    execute += (i == 0 ? "" : ", ") + tx.quote(statement.args[i]);
  }
  return execute + ")";
}

std::string Explain(pqxx::connection& conn, const Statement& statement) {
  pqxx::nontransaction tx(conn);
  std::string plan;
  for (const pqxx::row& row : tx.exec("EXPLAIN " + Execute(tx, statement))) {
    plan += std::string(row[0].c_str()) + "\n";
  }
  return plan;
}

class StorePostgresPlans : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::CreateTestDatabase();
    ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_));
    conn_ = std::make_unique<pqxx::connection>(url_);
    pqxx::nontransaction tx(*conn_);
    tx.exec(sql::kSessionSetupSql);  // as the store's pooled connections
    tx.exec("SET plan_cache_mode = force_generic_plan");
  }

  // Prepares `statement` and caches its plan while the table is empty.
  void PrepareOnEmptyTable(const Statement& statement) {
    {
      // SQL PREPARE: libpqxx 6 prepares only on first use.
      pqxx::nontransaction tx(*conn_);
      tx.exec("PREPARE " + statement.name + " AS " + statement.sql);
    }
    empty_table_plans_.push_back(Explain(*conn_, statement));
  }

  void Fill() {
    ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("room"));
    Seq seq = head.last_seq;
    for (int batch = 0; batch < kDocuments / 500; ++batch) {
      std::vector<StoredDocument> docs;
      for (int i = 0; i < 500; ++i) {
        ++seq;
        docs.push_back(StoredDocument{seq % 10 == 0 ? "other" : "messages",
                                      "m" + std::to_string(seq), 1700000000000 + seq, false,
                                      seq, std::string(300, 'x')});
      }
      ASSERT_OK(store_->Commit("room", CommitFence{seq - 500}, docs, 0, 0));
    }
    pqxx::nontransaction tx(*conn_);
    // The premise: no statistics yet.
    ASSERT_EQ(tx.exec("SELECT count(*) FROM pg_stats WHERE tablename = 'documents'")[0][0]
                  .as<int>(),
              0);
  }

  std::string url_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<pqxx::connection> conn_;
  std::vector<std::string> empty_table_plans_;
};

TEST_F(StorePostgresPlans, LookupProbesThePrimaryKeyPerKey) {
  const Statement lookup{
      "lookup", sql::kLookupSql, {"{room,room}", "{messages,other}", "{m17,m20}"}};
  PrepareOnEmptyTable(lookup);
  Fill();
  for (const std::string& plan : {empty_table_plans_[0], Explain(*conn_, lookup)}) {
    EXPECT_THAT(plan, HasSubstr("Index Cond: ((room = k.room) AND (collection = k.collection) AND "
                                "(id = k.id))"))
        << plan;
    EXPECT_THAT(plan, HasSubstr("documents_pkey")) << plan;
    EXPECT_THAT(plan, Not(HasSubstr("Hash"))) << plan;
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan"))) << plan;
  }
  // And it finds what is there, in the caller's order.
  pqxx::nontransaction tx(*conn_);
  pqxx::result rows = tx.exec(Execute(
      tx, Statement{"lookup", nullptr,
                    {"{room,room,room}", "{messages,other,messages}", "{m17,m20,missing}"}}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0].as<int>(), 1);
  EXPECT_EQ(rows[0][2].as<std::string>(), "m17");
  EXPECT_EQ(rows[1][0].as<int>(), 2);
  EXPECT_EQ(rows[1][2].as<std::string>(), "m20");
}

// The multi-room commit: each room's fence is a primary-key probe of rooms
// (without the session setting, a plan cached on the empty table
// hash-joined a full scan of rooms), and opening a room is one too.
TEST_F(StorePostgresPlans, CommitAndOpenRoomProbeRoomsByKey) {
  const Statement commit{"commit", sql::kCommitSql,
                         {"{room,other-room}", "{4000,0}", "{4001,1}", "{10,10}",
                          "{room,other-room}", "{messages,messages}", "{new1,new2}",
                          "{4001,1}", "{1,1}", "{f,f}", "{\\x00,\\x00}", "{3,9}", "{0,2}", "{0,0}"}};
  const Statement open_room{"open_rooms", sql::kOpenRoomsSql, {"{room,other}", "{e1,e2}"}};
  Statement commit_new_keys = commit;
  commit_new_keys.name = "commit_new_keys";
  commit_new_keys.sql = sql::kCommitNewKeysSql;
  PrepareOnEmptyTable(commit);
  PrepareOnEmptyTable(open_room);
  PrepareOnEmptyTable(commit_new_keys);
  Fill();
  for (const std::string& plan : {empty_table_plans_[0], Explain(*conn_, commit),
                                  empty_table_plans_[2], Explain(*conn_, commit_new_keys)}) {
    EXPECT_THAT(plan, HasSubstr("Index Scan using rooms_pkey on rooms r")) << plan;
    EXPECT_THAT(plan, HasSubstr("shard_leases_pkey")) << plan;  // the lease fence
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan"))) << plan;
  }
  for (const std::string& plan : {empty_table_plans_[1], Explain(*conn_, open_room)}) {
    EXPECT_THAT(plan, HasSubstr("rooms_pkey")) << plan;
    EXPECT_THAT(plan, Not(HasSubstr("Seq Scan"))) << plan;
  }
}

TEST_F(StorePostgresPlans, ReadsUseTheirSeqIndex) {
  const std::vector<std::pair<Statement, std::string>> reads = {
      {{"since_collection", sql::kSinceCollectionSql, {"room", "100", "50", "messages"}},
       "Index Scan using documents_room_collection_seq"},
      {{"since_all", sql::kSinceAllSql, {"room", "100", "50"}},
       "Index Scan using documents_room_seq"},
      {{"before_collection", sql::kBeforeCollectionSql, {"room", "3000", "50", "messages"}},
       "Index Scan Backward using documents_room_collection_seq"},
      {{"before_all", sql::kBeforeAllSql, {"room", "3000", "50"}},
       "Index Scan Backward using documents_room_seq"},
  };
  for (const auto& [statement, index] : reads) PrepareOnEmptyTable(statement);
  Fill();
  for (size_t i = 0; i < reads.size(); ++i) {
    const auto& [statement, index] = reads[i];
    EXPECT_THAT(empty_table_plans_[i], HasSubstr(index)) << statement.name;
    std::string plan = Explain(*conn_, statement);
    EXPECT_THAT(plan, HasSubstr(index)) << statement.name << "\n" << plan;
    EXPECT_THAT(plan, Not(HasSubstr("Sort"))) << statement.name << "\n" << plan;
  }
}

}  // namespace
}  // namespace roomsync
