#ifndef CRUCIBLE_SERVER_TENANCY_TENANTS_FILE_H_
#define CRUCIBLE_SERVER_TENANCY_TENANTS_FILE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/tenancy/tenants_config.h"

namespace server {

// The tenants file (see ParseTenantsConfig), read at start and read again
// on request: a changed file that parses replaces the config; one that does
// not is logged (once per content) and the config in force stays.
// Thread-safe.
class TenantsFile {
 public:
  // NOT_FOUND if the file cannot be read, INVALID_ARGUMENT if it does not
  // parse (both naming the path).
  static absl::StatusOr<std::unique_ptr<TenantsFile>> Open(std::string path);

  const std::string& path() const { return path_; }
  // The config in force.
  std::shared_ptr<const TenantsConfig> current() const;
  // Reads the file again: the new config if its content changed and
  // parses, else nullptr (unchanged, unreadable or invalid: the config in
  // force stays).
  std::shared_ptr<const TenantsConfig> ReloadIfChanged();

 private:
  explicit TenantsFile(std::string path) : path_(std::move(path)) {}
  // The file's content and its config.
  absl::StatusOr<std::shared_ptr<const TenantsConfig>> Read(
      std::string& content) const;

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const TenantsConfig> current_ ABSL_GUARDED_BY(mu_);
  // Content of the last read, good or bad, so each change is looked at
  // (and a bad one logged) once.
  std::string last_content_ ABSL_GUARDED_BY(mu_);
  bool last_unreadable_ ABSL_GUARDED_BY(mu_) = false;
};

// One line describing a config for the log, e.g. "3 tenants named; default
// weight 1, max_queued_tasks 1000, ...".
std::string DescribeTenantsConfig(const TenantsConfig& config);

}  // namespace server

#endif  // CRUCIBLE_SERVER_TENANCY_TENANTS_FILE_H_
