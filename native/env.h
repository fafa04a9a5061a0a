// Numeric knobs from the environment (POLYTUNE_HOST_CACHE_MB, POLYTUNE_PACK_CACHE_MB, ...).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

namespace pt {

// The variable's value, or `fallback` where it is unset or empty. A value that is not a
// non-negative number (a typo such as "1G") gives the fallback too, with one line on stderr naming
// the variable, so the mistake is seen instead of being read as 0 (what atof made of it: a cache
// silently off). Read each time: the tests change some of these between calls.
inline double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end != v && *end == '\0' && std::isfinite(x) && x >= 0) return x;
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  if (warned.insert(std::string(name) + "=" + v).second)
    std::fprintf(stderr, "polytune: %s=\"%s\" is not a non-negative number; using the default, %g\n", name, v, fallback);
  return fallback;
}

}  // namespace pt
