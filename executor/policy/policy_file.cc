#include "executor/policy/policy_file.h"

#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace policy {
namespace {

using nlohmann::json;

absl::Status TypeError(absl::string_view key, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("policy key \"", key, "\" must be ", want));
}

absl::Status GetString(const json& v, absl::string_view key, std::string& out) {
  if (!v.is_string()) return TypeError(key, "a string");
  out = v.get<std::string>();
  return absl::OkStatus();
}

absl::Status GetInt(const json& v, absl::string_view key, int64_t& out) {
  if (!v.is_number_integer()) return TypeError(key, "an integer");
  out = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status GetDuration(const json& v, absl::string_view key,
                         absl::Duration& out) {
  if (!v.is_string() || !absl::ParseDuration(v.get<std::string>(), &out)) {
    return TypeError(key, "a duration string such as \"90s\" or \"10m\"");
  }
  return absl::OkStatus();
}

// {"default": X, "max": Y}, either optional.
template <typename T>
absl::Status GetPair(const json& v, absl::string_view key, T& def, T& max,
                     absl::Status (*get)(const json&, absl::string_view, T&)) {
  if (!v.is_object())
    return TypeError(key, "an object {\"default\": ..., \"max\": ...}");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string sub = absl::StrCat(key, ".", it.key());
    absl::Status s;
    if (it.key() == "default") {
      s = get(it.value(), sub, def);
    } else if (it.key() == "max") {
      s = get(it.value(), sub, max);
    } else {
      s = absl::InvalidArgumentError(absl::StrCat(
          "unknown policy key \"", sub, "\" (expected default or max)"));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyPolicyJson(absl::string_view text,
                             ContainerPolicyOptions& o) {
  json doc = json::parse(text.begin(), text.end(), nullptr,
                         /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("policy is not valid JSON");
  }
  if (!doc.is_object())
    return absl::InvalidArgumentError("policy must be a JSON object");
  using Setter = std::function<absl::Status(const json&, const std::string&)>;
  const std::map<std::string, Setter> setters = {
      {"images",
       [&](const json& v, const std::string& k) {
         if (!v.is_array()) return TypeError(k, "an array of strings");
         std::vector<std::string> rules;
         for (const json& r : v) {
           if (!r.is_string() || r.get<std::string>().empty()) {
             return TypeError(k, "an array of non-empty strings");
           }
           rules.push_back(r.get<std::string>());
         }
         ParseImageRules(rules, o);
         return absl::OkStatus();
       }},
      {"pull_images",
       [&](const json& v, const std::string& k) {
         if (!v.is_boolean()) return TypeError(k, "true or false");
         o.pull_images = v.get<bool>();
         return absl::OkStatus();
       }},
      {"user", [&](const json& v,
                   const std::string& k) { return GetString(v, k, o.user); }},
      {"runtime",
       [&](const json& v, const std::string& k) {
         return GetString(v, k, o.runtime);
       }},
      {"network",
       [&](const json& v, const std::string& k) {
         return GetString(v, k, o.network);
       }},
      {"userns",
       [&](const json& v, const std::string& k) {
         return GetString(v, k, o.userns);
       }},
      {"memory_bytes",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_memory_bytes,
                                 o.max_memory_bytes, GetInt);
       }},
      {"cpu_millis",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_cpu_millis, o.max_cpu_millis,
                                 GetInt);
       }},
      {"pids_limit",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_pids_limit, o.max_pids_limit,
                                 GetInt);
       }},
      {"tmpfs_bytes",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_tmpfs_bytes, o.max_tmpfs_bytes,
                                 GetInt);
       }},
      {"max_output_bytes",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_max_output_bytes,
                                 o.max_max_output_bytes, GetInt);
       }},
      {"scratch_bytes",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_scratch_bytes,
                                 o.max_scratch_bytes, GetInt);
       }},
      {"max_artifact_bytes",
       [&](const json& v, const std::string& k) {
         return GetPair<int64_t>(v, k, o.default_max_artifact_bytes,
                                 o.max_max_artifact_bytes, GetInt);
       }},
      {"max_input_files",
       [&](const json& v, const std::string& k) {
         return GetInt(v, k, o.max_input_files);
       }},
      {"max_input_bytes",
       [&](const json& v, const std::string& k) {
         return GetInt(v, k, o.max_input_bytes);
       }},
      {"timeout",
       [&](const json& v, const std::string& k) {
         return GetPair<absl::Duration>(v, k, o.default_timeout, o.max_timeout,
                                        GetDuration);
       }},
      {"nofile",
       [&](const json& v, const std::string& k) {
         return GetInt(v, k, o.nofile_limit);
       }},
      {"nproc",
       [&](const json& v, const std::string& k) {
         return GetInt(v, k, o.nproc_limit);
       }},
  };
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    auto setter = setters.find(it.key());
    if (setter == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown policy key \"", it.key(), "\""));
    }
    if (absl::Status s = setter->second(it.value(), it.key()); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::Status ApplyPolicyFile(const std::string& path,
                             ContainerPolicyOptions& o) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("policy file ", path, " cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::Status s = ApplyPolicyJson(text.str(), o);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("policy file ", path, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerPolicy> LoadPolicy(const std::string& path,
                                           const std::string& executor_id) {
  ContainerPolicyOptions options;
  if (!path.empty()) RETURN_IF_ERROR(ApplyPolicyFile(path, options));
  if (!executor_id.empty()) options.executor_id = executor_id;
  return ContainerPolicy::Create(std::move(options));
}

}  // namespace policy
