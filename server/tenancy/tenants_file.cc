#include "server/tenancy/tenants_file.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace server {

absl::StatusOr<std::unique_ptr<TenantsFile>> TenantsFile::Open(
    std::string path) {
  std::unique_ptr<TenantsFile> file(new TenantsFile(std::move(path)));
  std::string content;
  ASSIGN_OR_RETURN(std::shared_ptr<const TenantsConfig> config,
                   file->Read(content));
  absl::MutexLock lock(&file->mu_);
  file->current_ = std::move(config);
  file->last_content_ = std::move(content);
  return file;
}

std::shared_ptr<const TenantsConfig> TenantsFile::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::StatusOr<std::shared_ptr<const TenantsConfig>> TenantsFile::Read(
    std::string& content) const {
  std::ifstream in(path_, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("tenants file ", path_, " cannot be read"));
  }
  content = text.str();
  absl::StatusOr<TenantsConfig> config = ParseTenantsConfig(content);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenants file ", path_, ": ", config.status().message()));
  }
  return std::make_shared<const TenantsConfig>(*std::move(config));
}

std::shared_ptr<const TenantsConfig> TenantsFile::ReloadIfChanged() {
  std::string content;
  absl::StatusOr<std::shared_ptr<const TenantsConfig>> config = Read(content);
  absl::MutexLock lock(&mu_);
  if (absl::IsNotFound(config.status())) {
    // A file being replaced may be missing for a moment: said once.
    if (!last_unreadable_) {
      LOG(WARNING) << config.status().message() << "; keeping the quotas in "
                   << "force";
    }
    last_unreadable_ = true;
    return nullptr;
  }
  last_unreadable_ = false;
  if (content == last_content_) return nullptr;
  last_content_ = content;
  if (!config.ok()) {
    LOG(WARNING) << config.status().message()
                 << "; keeping the quotas in force";
    return nullptr;
  }
  current_ = *config;
  LOG(INFO) << "tenants file " << path_
            << " reloaded: " << DescribeTenantsConfig(*current_);
  return current_;
}

std::string DescribeTenantsConfig(const TenantsConfig& config) {
  const TenantLimits& d = config.defaults;
  return absl::StrFormat(
      "%d tenants named; defaults: weight %g, max_queued_tasks %d, "
      "max_running_tasks %d, create_rate %g/s (burst %g)",
      config.tenants.size(), d.weight, d.max_queued_tasks, d.max_running_tasks,
      d.create_per_second, d.create_burst);
}

}  // namespace server
