#include "scenarios/error.hpp"

#include <cstdio>
#include <cstdlib>

namespace moesim {

std::string located_message(const std::string& source, const std::string& pointer,
                            const std::string& expected, const std::string& found) {
  std::string m = source;
  m += ": ";
  m += pointer.empty() ? std::string("/") : pointer;
  m += ": expected " + expected;
  if (!found.empty()) m += ", found " + found;
  return m;
}

void internal_assert_fail(const char* cond, const std::string& msg, const char* file, int line) {
  std::fprintf(stderr, "moesim: internal error at %s:%d: %s (%s)\n", file, line, msg.c_str(), cond);
  std::abort();
}

}  // namespace moesim
