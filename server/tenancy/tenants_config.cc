#include "server/tenancy/tenants_config.h"

#include <functional>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace server {
namespace {

using nlohmann::json;

// Tenant names are the tenants of identities; this only keeps the file
// sane (and its log lines short).
constexpr size_t kMaxTenantNameBytes = 128;

absl::Status TypeError(absl::string_view key, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("key \"", key, "\" must be ", want));
}

absl::Status GetCount(const json& v, absl::string_view key, int64_t& out) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    return TypeError(key, "an integer >= 0 (0: no limit)");
  }
  out = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status GetRate(const json& v, absl::string_view key, double& out) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1e9) {
    return TypeError(key, "a number >= 0 (0: no limit)");
  }
  out = v.get<double>();
  return absl::OkStatus();
}

using Setter = std::function<absl::Status(const json&, const std::string&)>;

// Applies an object's keys with `setters`; unknown keys are errors.
absl::Status ApplyObject(const json& v, const std::string& key,
                         const std::map<std::string, Setter>& setters) {
  if (!v.is_object()) return TypeError(key, "an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string sub = absl::StrCat(key, ".", it.key());
    auto setter = setters.find(it.key());
    if (setter == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key \"", sub, "\""));
    }
    RETURN_IF_ERROR(setter->second(it.value(), sub));
  }
  return absl::OkStatus();
}

absl::Status ApplyMaxima(const json& v, const std::string& key, TaskMaxima& m) {
  auto count = [](int64_t& field) {
    return [&field](const json& v, const std::string& k) {
      return GetCount(v, k, field);
    };
  };
  return ApplyObject(
      v, key,
      {{"memory_bytes", count(m.memory_bytes)},
       {"cpu_millis", count(m.cpu_millis)},
       {"pids_limit", count(m.pids_limit)},
       {"tmpfs_bytes", count(m.tmpfs_bytes)},
       {"max_output_bytes", count(m.max_output_bytes)},
       {"timeout", [&m](const json& v, const std::string& k) {
          absl::Duration d;
          if (!v.is_string() ||
              !absl::ParseDuration(v.get<std::string>(), &d) ||
              d < absl::ZeroDuration()) {
            return TypeError(k, "a duration string such as \"90s\" or \"1h\"");
          }
          m.timeout = d;
          return absl::OkStatus();
        }}});
}

// Applies LIMITS on top of `l` (which holds the defaults for a tenant).
absl::Status ApplyLimits(const json& v, const std::string& key,
                         TenantLimits& l) {
  return ApplyObject(
      v, key,
      {{"weight",
        [&l](const json& v, const std::string& k) {
          if (!v.is_number() || !(v.get<double>() > 0) ||
              v.get<double>() > 1e6) {
            return TypeError(k, "a number > 0 and at most 1e6");
          }
          l.weight = v.get<double>();
          return absl::OkStatus();
        }},
       {"max_queued_tasks",
        [&l](const json& v, const std::string& k) {
          return GetCount(v, k, l.max_queued_tasks);
        }},
       {"max_running_tasks",
        [&l](const json& v, const std::string& k) {
          return GetCount(v, k, l.max_running_tasks);
        }},
       {"create_rate",
        [&l](const json& v, const std::string& k) {
          return ApplyObject(
              v, k,
              {{"per_second",
                [&l](const json& v, const std::string& k) {
                  return GetRate(v, k, l.create_per_second);
                }},
               {"burst", [&l](const json& v, const std::string& k) {
                  return GetRate(v, k, l.create_burst);
                }}});
        }},
       {"max_task", [&l](const json& v, const std::string& k) {
          return ApplyMaxima(v, k, l.max_task);
        }}});
}

}  // namespace

absl::StatusOr<TenantsConfig> ParseTenantsConfig(absl::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr,
                         /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("not a JSON object");
  TenantsConfig config;
  // The defaults first: every tenant starts from them.
  if (doc.contains("defaults")) {
    RETURN_IF_ERROR(ApplyLimits(doc["defaults"], "defaults", config.defaults));
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "defaults") continue;
    if (it.key() != "tenants") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key \"", it.key(), "\" (expected defaults or tenants)"));
    }
    if (!it.value().is_object()) return TypeError("tenants", "an object");
    for (auto t = it.value().begin(); t != it.value().end(); ++t) {
      if (t.key().empty() || t.key().size() > kMaxTenantNameBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("tenants: a tenant name must have 1 to ",
                         kMaxTenantNameBytes, " bytes"));
      }
      TenantLimits limits = config.defaults;
      RETURN_IF_ERROR(
          ApplyLimits(t.value(), absl::StrCat("tenants.", t.key()), limits));
      config.tenants.emplace(t.key(), std::move(limits));
    }
  }
  return config;
}

}  // namespace server
