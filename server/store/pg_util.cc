#include "server/store/pg_util.h"

#include <libpq-fe.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace server {
namespace {

// pg_type OIDs of the parameter types sent.
constexpr unsigned kByteaOid = 17;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kInt4Oid = 23;
constexpr unsigned kTextOid = 25;
constexpr unsigned kTextArrayOid = 1009;

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t FromBigEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The first words of a statement, to name it in errors.
std::string Describe(absl::string_view sql) {
  sql = absl::StripLeadingAsciiWhitespace(sql);
  std::vector<absl::string_view> words =
      absl::StrSplit(sql, absl::ByAnyChar(" \n\t"), absl::SkipEmpty());
  if (words.size() > 4) words.resize(4);
  return absl::StrJoin(words, " ");
}

absl::Status ErrorOf(PGconn* c, PGresult* r, absl::string_view sql) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = state ? state : "";
  std::string message =
      r ? PQresultErrorMessage(r) : (c ? PQerrorMessage(c) : "no connection");
  message = std::string(absl::StripAsciiWhitespace(message));
  const std::string text =
      absl::StrCat("PostgreSQL: ", Describe(sql), ": ", message,
                   code.empty() ? "" : absl::StrCat(" (SQLSTATE ", code, ")"));
  if (c == nullptr || PQstatus(c) == CONNECTION_BAD ||
      absl::StartsWith(code, "08") || code == "57P01" || code == "57P02" ||
      code == "57P03" || code == "25P03") {
    return absl::UnavailableError(text);
  }
  if (code == "53100") return absl::ResourceExhaustedError(text);
  if (code == "23505") return absl::AlreadyExistsError(text);
  if (code == "40001" || code == "40P01" || code == "55P03") {
    return absl::AbortedError(text);
  }
  if (code == "57014") return absl::DeadlineExceededError(text);
  return absl::InternalError(text);
}

}  // namespace

void PgParams::Add(unsigned oid, std::string bytes, bool null, int format) {
  types_.push_back(oid);
  values_.push_back(std::move(bytes));
  nulls_.push_back(null);
  formats_.push_back(format);
}
std::vector<const char*> PgParams::Values() const {
  std::vector<const char*> out(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    out[i] = nulls_[i] ? nullptr : values_[i].data();
  }
  return out;
}
std::vector<int> PgParams::Lengths() const {
  std::vector<int> out(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    out[i] = static_cast<int>(values_[i].size());
  }
  return out;
}
PgParams& PgParams::TextArray(const std::vector<std::string>& v) {
  // {"a","b\"c"}: every element quoted, quotes and backslashes escaped.
  std::string literal = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) literal += ',';
    literal += '"';
    for (char ch : v[i]) {
      if (ch == '"' || ch == '\\') literal += '\\';
      literal += ch;
    }
    literal += '"';
  }
  literal += '}';
  Add(kTextArrayOid, std::move(literal), false, /*format=*/0);
  return *this;
}
PgParams& PgParams::Text(absl::string_view v) {
  Add(kTextOid, std::string(v));
  return *this;
}
PgParams& PgParams::Bytes(absl::string_view v) {
  Add(kByteaOid, std::string(v));
  return *this;
}
PgParams& PgParams::Int32(int32_t v) {
  Add(kInt4Oid, BigEndian(static_cast<uint32_t>(v), 4));
  return *this;
}
PgParams& PgParams::Int64(int64_t v) {
  Add(kInt8Oid, BigEndian(static_cast<uint64_t>(v), 8));
  return *this;
}
PgParams& PgParams::Int64OrNull(std::optional<int64_t> v) {
  if (v.has_value()) return Int64(*v);
  Add(kInt8Oid, "", true);
  return *this;
}
PgParams& PgParams::TextOrNull(absl::string_view v) {
  if (!v.empty()) return Text(v);
  Add(kTextOid, "", true);
  return *this;
}

PgResult::~PgResult() { PQclear(r_); }
int PgResult::rows() const { return PQntuples(r_); }
int64_t PgResult::affected() const {
  int64_t n = 0;
  return absl::SimpleAtoi(PQcmdTuples(r_), &n) ? n : 0;
}
bool PgResult::IsNull(int row, int col) const {
  return PQgetisnull(r_, row, col) != 0;
}
std::string PgResult::Bytes(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
}
int64_t PgResult::Int64(int row, int col) const {
  if (PQgetlength(r_, row, col) != 8) return 0;
  return static_cast<int64_t>(FromBigEndian(PQgetvalue(r_, row, col), 8));
}
int32_t PgResult::Int32(int row, int col) const {
  if (PQgetlength(r_, row, col) != 4) return 0;
  return static_cast<int32_t>(FromBigEndian(PQgetvalue(r_, row, col), 4));
}
bool PgResult::Bool(int row, int col) const {
  return PQgetlength(r_, row, col) == 1 && PQgetvalue(r_, row, col)[0] != 0;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& uri, const std::string& settings) {
  // Defaults first: the URI's own settings, expanded from dbname, override
  // them.
  const char* keys[] = {"connect_timeout",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "application_name",
                        "options",
                        "dbname",
                        nullptr};
  const char* values[] = {
      "5",         "1",    "5", "2", "3", "crucible-server", settings.c_str(),
      uri.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    std::string message =
        c ? std::string(absl::StripAsciiWhitespace(PQerrorMessage(c)))
          : "out of memory";
    PQfinish(c);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL at ", RedactPostgresUri(uri),
                     ": ", message));
  }
  // NOTICEs ("relation ... already exists, skipping") are not for the log.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(c));
}

PgConnection::~PgConnection() { PQfinish(c_); }

bool PgConnection::EnsureConnected() {
  if (PQstatus(c_) == CONNECTION_OK) return true;
  prepared_.clear();  // they went with the session
  deallocate_ = false;
  PQreset(c_);
  return PQstatus(c_) == CONNECTION_OK;
}

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view sql,
                                            const PgParams& params) {
  if (!EnsureConnected()) return ErrorOf(c_, nullptr, sql);
  const size_t n = params.values_.size();
  const std::vector<const char*> values = params.Values();
  const std::vector<int> lengths = params.Lengths();
  const std::string text(sql);
  PGresult* r =
      PQexecParams(c_, text.c_str(), static_cast<int>(n), params.types_.data(),
                   values.data(), lengths.data(), params.formats_.data(),
                   /*resultFormat=*/1);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  absl::Status s = ErrorOf(c_, r, sql);
  PQclear(r);
  return s;
}

absl::Status PgConnection::ExecPipeline(
    const std::vector<PgStatement>& statements) {
  constexpr size_t kPerPipeline = 500;
  for (size_t begin = 0; begin < statements.size(); begin += kPerPipeline) {
    const size_t end = std::min(statements.size(), begin + kPerPipeline);
    if (!EnsureConnected()) return ErrorOf(c_, nullptr, statements[begin].sql);
    if (deallocate_) {
      if (absl::Status s = ExecScript("DEALLOCATE ALL"); !s.ok()) return s;
      prepared_.clear();
      deallocate_ = false;
    }
    if (PQenterPipelineMode(c_) != 1) {
      return ErrorOf(c_, nullptr, statements[begin].sql);
    }
    absl::Status error;
    for (size_t i = begin; i < end; ++i) {
      const PgParams& p = statements[i].params;
      const size_t n = p.values_.size();
      const std::vector<const char*> values = p.Values();
      const std::vector<int> lengths = p.Lengths();
      const char* name = statements[i].name;
      if (name != nullptr && !prepared_.contains(name)) {
        if (PQsendPrepare(c_, name, statements[i].sql.c_str(),
                          static_cast<int>(n), p.types_.data()) != 1) {
          error = ErrorOf(c_, nullptr, statements[i].sql);
          break;
        }
        prepared_.insert(name);
      }
      const int sent =
          name != nullptr
              ? PQsendQueryPrepared(c_, name, static_cast<int>(n),
                                    values.data(), lengths.data(),
                                    p.formats_.data(), /*resultFormat=*/1)
              : PQsendQueryParams(c_, statements[i].sql.c_str(),
                                  static_cast<int>(n), p.types_.data(),
                                  values.data(), lengths.data(),
                                  p.formats_.data(), /*resultFormat=*/1);
      if (sent != 1) {
        error = ErrorOf(c_, nullptr, statements[i].sql);
        break;
      }
    }
    if (PQpipelineSync(c_) != 1 && error.ok()) {
      error = ErrorOf(c_, nullptr, statements[begin].sql);
    }
    // Each query's results end with a null; the sync's result ends it all.
    size_t query = begin;
    while (PQstatus(c_) == CONNECTION_OK) {
      PGresult* r = PQgetResult(c_);
      if (r == nullptr) {
        ++query;
        continue;
      }
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_FATAL_ERROR && error.ok()) {
        error = ErrorOf(c_, r, statements[std::min(query, end - 1)].sql);
      }
      PQclear(r);
      if (st == PGRES_PIPELINE_SYNC) break;
    }
    if (PQstatus(c_) != CONNECTION_OK) {
      return error.ok() ? ErrorOf(c_, nullptr, statements[begin].sql) : error;
    }
    PQexitPipelineMode(c_);
    if (!error.ok()) {
      deallocate_ = true;
      return error;
    }
  }
  return absl::OkStatus();
}

absl::Status PgConnection::ExecScript(absl::string_view sql) {
  if (!EnsureConnected()) return ErrorOf(c_, nullptr, sql);
  const std::string text(sql);
  PGresult* r = PQexec(c_, text.c_str());
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  absl::Status s = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
                       ? absl::OkStatus()
                       : ErrorOf(c_, r, sql);
  PQclear(r);
  return s;
}

PgTransaction::PgTransaction(PgConnection& c, const char* begin) : c_(c) {
  status_ = c_.ExecScript(begin);
  if (!status_.ok()) done_ = true;
}

PgTransaction::~PgTransaction() {
  if (!done_) (void)c_.ExecScript("ROLLBACK");
}

absl::Status PgTransaction::Commit() {
  if (!status_.ok()) return status_;
  done_ = true;
  return c_.ExecScript("COMMIT");
}

bool IsPostgresUri(absl::string_view store) {
  return absl::StartsWith(store, "postgresql://") ||
         absl::StartsWith(store, "postgres://");
}

std::string RedactPostgresUri(absl::string_view uri) {
  // scheme://user:password@host...: the password goes.
  size_t scheme = uri.find("://");
  if (scheme == absl::string_view::npos) return "(a connection string)";
  size_t at = uri.find('@', scheme + 3);
  if (at == absl::string_view::npos) return std::string(uri);
  absl::string_view userinfo = uri.substr(scheme + 3, at - scheme - 3);
  size_t colon = userinfo.find(':');
  if (colon == absl::string_view::npos) return std::string(uri);
  return absl::StrCat(uri.substr(0, scheme + 3), userinfo.substr(0, colon),
                      ":***", uri.substr(at));
}

}  // namespace server
