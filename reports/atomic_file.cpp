#include "reports/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "scenarios/error.hpp"

namespace moesim::reports {

namespace fs = std::filesystem;

namespace {

std::string reason(int err) {
  return std::strerror(err);
}

constexpr const char* kNeverADirectory = "a directory is never replaced, even with --force";

// A hidden name beside `target` that no other writer uses: this process's id and a counter. `kind` is
// "tmp" (a new file), "old" (the file it replaces, until the set is committed) or "probe".
std::string sibling_name(const fs::path& target, const char* kind) {
  static std::atomic<unsigned> counter{0};
  const std::string name = target.filename().string();
  return (target.parent_path() / ("." + name + ".moesim-" + kind + "-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(counter++)))
      .string();
}

// Creates a new file beside `target` (O_EXCL: never one that exists) and returns its descriptor and
// path; -1 and errno when it cannot be created.
int create_sibling(const fs::path& target, const char* kind, std::string& path) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    path = sibling_name(target, kind);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

// A name beside `target` that nothing uses now, for writers that create their own file.
std::string unused_sibling(const fs::path& target, const char* kind) {
  struct stat st;
  std::string path;
  do path = sibling_name(target, kind);
  while (::lstat(path.c_str(), &st) == 0);
  return path;
}

// What stands at a path, for messages.
std::string describe(fs::file_status st) {
  switch (st.type()) {
    case fs::file_type::directory:
      return "a directory";
    case fs::file_type::regular:
      return "a file";
    case fs::file_type::symlink:
      return "a symbolic link";
    default:
      return "a device, pipe or socket (not a regular file)";
  }
}

// The directory a file at `p` lives in ("." for a bare name).
fs::path directory_of(const fs::path& p) {
  return p.parent_path().empty() ? fs::path(".") : p.parent_path();
}

// The file written in place of `path`: a symbolic link is followed, so that the file it points to is
// replaced and the link kept.
std::string resolved(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec) && fs::exists(path, ec)) {
    const fs::path real = fs::canonical(path, ec);
    if (!ec) return real.string();
  }
  return path;
}

// Creates and removes a file in `dir`; the error number when that fails, else 0.
int probe(const fs::path& dir) {
  std::string path;
  const int fd = create_sibling(dir / "probe", "probe", path);
  if (fd < 0) return errno;
  ::close(fd);
  ::unlink(path.c_str());
  return 0;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// Flushes `fd` to the device and closes it; the first error number, or 0.
int sync_and_close(int fd) {
  int err = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

void check_output_file(const std::string& path, bool force, const std::string& option) {
  const std::string at = path + ": " + option + ": ";
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::exists(st)) {
    if (fs::is_directory(st))
      throw IoError(at + "expected a file to write, found a directory (" + kNeverADirectory + ")");
    if (!fs::is_regular_file(st)) throw IoError(at + "expected a file to write, found " + describe(st));
    if (!force)
      throw IoError(at + "refusing to overwrite an existing file (use --force or another " + option + ")");
  }
  const fs::path dir = directory_of(resolved(path));
  const fs::file_status ds = fs::status(dir, ec);
  if (!fs::exists(ds))
    throw IoError(at + "expected a file in an existing directory, found no directory " + dir.string());
  if (!fs::is_directory(ds))
    throw IoError(at + "expected a file in a directory, found " + describe(ds) + " at " + dir.string());
  if (const int err = probe(dir); err != 0)
    throw IoError(at + "expected a file in a writable directory, found that no file can be created in " +
                  dir.string() + " (" + reason(err) + ")");
}

void check_output_dir(const std::string& dir, const std::string& option) {
  const std::string at = dir + ": " + option + ": ";
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw IoError(at + "expected an output directory, found " + describe(st));
  if (!fs::exists(st)) {
    // The deepest part of the path that exists says why the directory cannot be made there.
    for (fs::path p = fs::path(dir).parent_path(); !p.empty(); p = p.parent_path()) {
      const fs::file_status ps = fs::status(p, ec);
      if (fs::exists(ps)) {
        if (!fs::is_directory(ps))
          throw IoError(at + "expected an output directory, found " + describe(ps) + " at " + p.string());
        break;
      }
      if (p == p.parent_path()) break;
    }
    fs::create_directories(dir, ec);
    if (ec)
      throw IoError(at + "expected an output directory that exists or can be created, found that " +
                    "creating it fails (" + ec.message() + ")");
  }
  if (const int err = probe(dir); err != 0)
    throw IoError(at + "expected a writable output directory, found that no file can be created in it (" +
                  reason(err) + ")");
}

void write_file(const std::string& path, const std::string& text, bool force, const std::string& option) {
  check_output_file(path, force, option);
  OutputSet set;
  set.add(path, text);
  set.commit();
}

OutputSet::~OutputSet() {
  if (committed_) return;
  for (const Entry& e : entries_) ::unlink(e.temporary.c_str());
}

void OutputSet::add(const std::string& path, const std::string& text) {
  const std::string target = resolved(path);
  std::string temporary;
  const int fd = create_sibling(target, "tmp", temporary);
  if (fd < 0)
    throw IoError(path + ": cannot create a file in " + directory_of(target).string() + ": " + reason(errno) +
                  " (no output file was changed)");
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    throw IoError(path + ": write failed: " + reason(err) + " (no output file was changed)");
  }
  // The first error wins; a full disk or a file size limit shows at fwrite or, for text that fits in
  // the stdio buffer, only at fflush.
  int err = 0;
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) err = errno != 0 ? errno : EIO;
  if (err == 0 && std::fflush(f) != 0) err = errno != 0 ? errno : EIO;
  if (err == 0 && ::fsync(::fileno(f)) != 0) err = errno;
  if (err == 0 && std::ferror(f) != 0) err = EIO;
  if (std::fclose(f) != 0 && err == 0) err = errno != 0 ? errno : EIO;
  if (err != 0) {
    ::unlink(temporary.c_str());
    throw IoError(path + ": write failed: " + reason(err) + " (no output file was changed)");
  }
  entries_.push_back({path, target, temporary});
}

void OutputSet::add_with(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string target = resolved(path);
  const std::string temporary = unused_sibling(target, "tmp");
  const auto named = [&](const std::exception& e) { return replace_all(e.what(), temporary, path); };
  try {
    write(temporary);
  } catch (const ParseError& e) {
    ::unlink(temporary.c_str());
    throw ParseError(named(e));
  } catch (const ConfigError& e) {
    ::unlink(temporary.c_str());
    throw ConfigError(named(e));
  } catch (const IoError& e) {
    ::unlink(temporary.c_str());
    throw IoError(named(e));
  } catch (const CalibrationError& e) {
    ::unlink(temporary.c_str());
    throw CalibrationError(named(e));
  } catch (const Error& e) {
    ::unlink(temporary.c_str());
    throw Error(named(e));
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  const int fd = ::open(temporary.c_str(), O_RDONLY | O_CLOEXEC);
  const int err = fd < 0 ? errno : sync_and_close(fd);
  if (err != 0) {
    ::unlink(temporary.c_str());
    throw IoError(path + ": write failed: " + reason(err) + " (no output file was changed)");
  }
  entries_.push_back({path, target, temporary});
}

void OutputSet::remove_on_commit(const std::string& path) {
  stale_.push_back(path);
}

void OutputSet::commit() {
  MOESIM_ASSERT(!committed_, "an output set is committed once");
  // What has been done so far, to undo it: `backup` holds the file a target had (a hard link to it, or
  // the file itself renamed away), `installed` says the new file is at the target.
  struct Step {
    std::string target, backup;
    bool installed = false;
  };
  std::vector<Step> done;
  const auto fail = [&](const std::string& shown, const std::string& what, int err) {
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      if (!it->backup.empty())
        ::rename(it->backup.c_str(), it->target.c_str());
      else if (it->installed)
        ::unlink(it->target.c_str());
    }
    throw IoError(shown + ": " + what + ": " + reason(err) + " (no output file was changed)");
  };
  // Keeps the file at `target` aside, if there is one; false with errno when that fails.
  const auto keep_aside = [](const std::string& target, std::string& backup) {
    struct stat st;
    if (::lstat(target.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) return true;
    backup = unused_sibling(target, "old");
    // A hard link keeps the old file at its name until the rename replaces it in one step; where links
    // are not supported the old file is renamed away for the moment of the rename.
    return ::link(target.c_str(), backup.c_str()) == 0 || ::rename(target.c_str(), backup.c_str()) == 0;
  };
  std::set<std::string> dirs;
  for (const Entry& e : entries_) {
    Step step{e.target, "", false};
    if (!keep_aside(e.target, step.backup)) fail(e.shown, "cannot keep the file it replaces", errno);
    if (::rename(e.temporary.c_str(), e.target.c_str()) != 0) {
      const int err = errno;
      done.push_back(step);
      fail(e.shown, "cannot rename the new file into place", err);
    }
    step.installed = true;
    done.push_back(step);
    dirs.insert(directory_of(e.target).string());
  }
  for (const std::string& path : stale_) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) continue;
    Step step{path, unused_sibling(path, "old"), false};
    if (::rename(path.c_str(), step.backup.c_str()) != 0) fail(path, "cannot remove the stale file", errno);
    done.push_back(step);
    dirs.insert(directory_of(path).string());
  }
  committed_ = true;
  for (const Step& s : done)
    if (!s.backup.empty()) ::unlink(s.backup.c_str());
  // The renames reach the device with their directories. Best effort: the files' contents are already
  // synced and in place, and some filesystems refuse to sync a directory.
  for (const std::string& d : dirs) {
    const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) sync_and_close(fd);
  }
}

}  // namespace moesim::reports
