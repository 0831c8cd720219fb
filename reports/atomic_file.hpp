#pragma once
/// \file How moesim writes every file (docs/exit-codes.md, "How outputs are written"): to a hidden
/// temporary beside the target, flushed, synced and closed with every error checked, then renamed over
/// the target, so that a target is always either its old content or the complete new one. OutputSet
/// does this for several files at once: they appear together or, if anything fails, none of them does
/// and the files they replace are kept.
///
/// Every failure throws IoError naming the target (never the temporary) and the system's reason;
/// temporaries are removed on every path but a kill, which can leave hidden files named
/// ".NAME.moesim-tmp-PID-N" beside the target (never a truncated target).

#include <functional>
#include <string>
#include <vector>

namespace moesim::reports {

/// Checks, before any work, that `path` can be written as a file: its directory exists and a file can
/// be created there; `path` is not a directory or other non-regular file (never replaced, even with
/// `force`), and does not exist unless `force`. `option` is the flag or key that named it ("-o",
/// "--dot"), for the message. Throws IoError "PATH: OPTION: expected ..., found ..." (or "refusing to
/// overwrite").
void check_output_file(const std::string& path, bool force, const std::string& option);

/// Checks, before any work, that `dir` can receive output files: creates it (and its parents) if
/// needed, then creates and removes a file there. Throws IoError "DIR: OPTION: expected ..., found
/// ..." naming what stood in the way (a file in the path, a directory that cannot be created or
/// written, with the system's reason).
void check_output_dir(const std::string& dir, const std::string& option);

/// Writes `text` to `path` atomically after check_output_file(path, force, option).
void write_file(const std::string& path, const std::string& text, bool force, const std::string& option);

/// Files written together: each is written to a temporary at once, and commit() renames all of them in
/// and removes the files marked stale. A set destroyed before commit() (an error anywhere) removes its
/// temporaries and leaves every target untouched.
class OutputSet {
 public:
  OutputSet() = default;
  /// Removes every temporary not committed.
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  /// Writes `text` to a temporary beside `path` (flushed, synced, closed, every error checked). A path
  /// that is a symbolic link is resolved: the file it points to is replaced, the link kept. Throws
  /// IoError naming `path`; the temporary is gone then.
  void add(const std::string& path, const std::string& text);
  /// For writers that create their own file: `write` is given the temporary's path (which does not
  /// exist yet) and must create and close it; it is then synced like add()'s. Errors `write` throws
  /// (moesim::Error and its kinds) are rethrown with the same type, the temporary's path replaced by
  /// `path` in the message.
  void add_with(const std::string& path, const std::function<void(const std::string& temporary)>& write);
  /// Marks a file to remove when the set is committed (a previous run's output this set does not
  /// replace). Only a regular file is removed; anything else at `path`, or nothing, is left alone.
  void remove_on_commit(const std::string& path);
  /// Renames every temporary over its target, then removes the stale files. If a rename fails, the
  /// targets already renamed in are put back as they were (the old file, or none) and IoError names the
  /// target that failed. Call once.
  void commit();

 private:
  struct Entry {
    std::string shown;      ///< the path as given, for messages
    std::string target;     ///< the file replaced (a symbolic link followed)
    std::string temporary;  ///< where the new content waits for commit()
  };
  std::vector<Entry> entries_;
  std::vector<std::string> stale_;
  bool committed_ = false;
};

}  // namespace moesim::reports
