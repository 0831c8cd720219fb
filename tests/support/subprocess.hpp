#pragma once
/// \file Running a piece of a test in a fresh child process (POSIX fork), for tests that need a process
/// without state left by earlier code: SimGrid's Engine is a process singleton, so "same input, same
/// bytes out" (style habit 11) is only shown by two runs that each start from nothing. Fork before any
/// engine exists in the parent, run the function in the child, bring its bytes back over a pipe, and
/// compare them in the parent.
///
/// The child must not use GoogleTest assertions: a failure recorded in the child is lost when it exits.
/// Return the bytes to compare (or throw) and assert on them in the parent.

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace moesim::test_support {

/// What a child process gave back.
struct ChildOutput {
  /// Everything the child wrote to the pipe: the function's result, or the message of the exception it
  /// threw.
  std::string bytes;
  /// Empty when the function returned and the child exited 0; otherwise why not ("threw: ...", "exited
  /// with status 2", "killed by signal 11", "fork failed: ..."), for the assertion's message.
  std::string failure;
  /// True when the function returned normally in the child and everything it returned came back.
  bool ok() const { return failure.empty(); }
};

namespace internal {

// Writes all of `s` to `fd`; false on a write error.
inline bool write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace internal

/// Runs `f` (callable as `std::string f()`) in a forked child process and returns the string it
/// returned, read from a pipe, with how the child ended. In the child: an exception's what() is sent
/// instead and the child exits 3; a failed write exits 2; the child leaves with _exit, so no atexit
/// handler or static destructor of the parent's image runs twice. The parent's stdio buffers are flushed
/// before the fork so nothing is printed twice.
template <class F>
ChildOutput run_in_child(F&& f) {
  ChildOutput out;
  int fd[2];
  if (::pipe(fd) != 0) {
    out.failure = std::string("pipe failed: ") + std::strerror(errno);
    return out;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.failure = std::string("fork failed: ") + std::strerror(errno);
    ::close(fd[0]);
    ::close(fd[1]);
    return out;
  }
  if (pid == 0) {
    ::close(fd[0]);
    int code = 0;
    std::string result;
    try {
      result = std::forward<F>(f)();
    } catch (const std::exception& e) {
      result = e.what();
      code = 3;
    } catch (...) {
      result = "an exception not derived from std::exception";
      code = 3;
    }
    if (!internal::write_all(fd[1], result)) code = 2;
    ::close(fd[1]);
    ::_exit(code);
  }
  ::close(fd[1]);
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.bytes.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd[0]);
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited < 0) {
    out.failure = std::string("waitpid failed: ") + std::strerror(errno);
  } else if (WIFSIGNALED(status)) {
    out.failure = "killed by signal " + std::to_string(WTERMSIG(status));
  } else if (!WIFEXITED(status)) {
    out.failure = "ended abnormally (wait status " + std::to_string(status) + ")";
  } else if (WEXITSTATUS(status) == 3) {
    out.failure = "threw: " + out.bytes;
  } else if (WEXITSTATUS(status) != 0) {
    out.failure = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return out;
}

}  // namespace moesim::test_support
