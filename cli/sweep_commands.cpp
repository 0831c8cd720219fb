// `moesim sweep` (points in worker processes, sharded across machines, resumable) and `moesim report
// merge` (every point of a sweep directory in one CSV and one JSON table). docs/sweep.md.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/check.hpp"
#include "cli/commands.hpp"
#include "cli/errors.hpp"
#include "models/analytic.hpp"
#include "reports/atomic_file.hpp"
#include "reports/result_json.hpp"
#include "scenarios/error.hpp"
#include "scenarios/loader.hpp"
#include "sim/step_sim.hpp"
#include "sweep/sweep_file.hpp"

namespace moesim::cli {

namespace fs = std::filesystem;

namespace {

// The sweep a directory holds: written once, checked on every resume so that two sweeps never mix.
Json sweep_manifest(const sweep::SweepSpec& s) {
  Json axes = Json::array();
  for (const auto& a : s.axes) axes.push_back({{"pointer", a.pointer}, {"values", a.values}});
  Json m{{"format", "moesim-sweep"},
         {"version", 1},
         {"name", s.name},
         {"base_scenario", s.base_path},
         {"combine", s.combine == sweep::Combine::kZip ? "zip" : "product"},
         {"axes", axes},
         {"points", sweep::point_count(s)}};
  m["hash"] = sweep::stable_hash(s.base.dump() + m.dump());
  return m;
}

bool pid_alive(pid_t pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// Claims point `id` for this process: creates CLAIM exclusively holding our pid; a claim whose process
// is gone (a killed sweep) is taken over. False when a live process holds it.
bool claim(const fs::path& claim_path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(claim_path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
      const std::string pid = std::to_string(::getpid()) + "\n";
      const bool ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      ::close(fd);
      if (!ok)
        throw IoError(located_message(claim_path.string(), "", "a writable claim file", "a write error"));
      return true;
    }
    if (errno != EEXIST)
      throw IoError(
          located_message(claim_path.string(), "", "a claim file that can be created", std::strerror(errno)));
    std::ifstream in(claim_path);
    long holder = 0;
    in >> holder;
    if (pid_alive(static_cast<pid_t>(holder)) && holder != ::getpid()) return false;
    fs::remove(claim_path);  // stale: its process is gone
  }
  return false;
}

// Evaluates one point and returns its file's JSON (never throws: an error is recorded in the file).
Json run_point(const sweep::SweepSpec& spec, const sweep::Point& p, std::optional<EngineKind> engine,
               const Catalog& cat) {
  Json out{{"sweep", spec.name}, {"index", p.index}, {"id", p.id}, {"values", p.values}};
  try {
    Scenario s = scenario_from_json(p.scenario, spec.base_path, cat);
    if (engine) s.engine.kind = *engine;
    out["engine"] = engine_kinds().name_of(s.engine.kind);
    const models::RoutingInput routing = check_scenario(s);
    if (s.engine.kind == EngineKind::kDes) {
      const sim::StepSimResult d = sim::simulate_step(s, {}, &routing);
      out["result"] = reports::result_json(s, d.result, &d);
    } else {
      out["result"] = reports::result_json(s, models::evaluate_analytic(s, routing));
    }
    out["status"] = "ok";
    out["exit_code"] = 0;
  } catch (const std::exception& e) {
    out["status"] = "error";
    out["exit_code"] = exit_code(error_kind(e));
    out["error"] = error_line(e);
  }
  return out;
}

void append_line(const fs::path& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_CREAT | O_APPEND | O_WRONLY, 0644);
  if (fd < 0) return;
  const std::string text = line + "\n";
  [[maybe_unused]] const ssize_t n = ::write(fd, text.data(), text.size());  // one write: atomic append
  ::close(fd);
}

class Progress {
 public:
  Progress(int64_t total, int64_t done) : total_(total), done_(done), start_(done), t0_(clock::now()) {
    tty_ = ::isatty(2) != 0;
  }
  void update(int64_t done, int64_t failed) {
    done_ = done;
    const double elapsed = std::chrono::duration<double>(clock::now() - t0_).count();
    const double rate = done_ > start_ && elapsed > 0 ? (done_ - start_) / elapsed : 0;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0;
    char line[256];
    if (tty_) {
      const int width = 30, filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
      std::snprintf(line, sizeof line, "\r[%s%s] %lld/%lld points, %lld failed, ETA %.0f s ",
                    std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                    static_cast<long long>(done_), static_cast<long long>(total_),
                    static_cast<long long>(failed), eta);
    } else {
      std::snprintf(
          line, sizeof line, "{\"done\": %lld, \"total\": %lld, \"failed\": %lld, \"eta_s\": %.1f}\n",
          static_cast<long long>(done_), static_cast<long long>(total_), static_cast<long long>(failed), eta);
    }
    std::cerr << line << std::flush;
  }
  void finish() {
    if (tty_) std::cerr << "\n";
  }

 private:
  using clock = std::chrono::steady_clock;
  int64_t total_, done_, start_;
  clock::time_point t0_;
  bool tty_ = false;
};

}  // namespace

int sweep_cmd(const SweepArgs& a, const Catalog& cat) {
  const sweep::SweepSpec spec = sweep::read_sweep(a.file);
  const sweep::Shard shard = sweep::shard_from(a.shard, [](const char* n) { return std::getenv(n); });
  reports::check_output_dir(a.out, "--out");
  const fs::path dir = a.out, points = dir / "points";
  fs::create_directories(points);
  const Json manifest = sweep_manifest(spec);
  const fs::path mpath = dir / "sweep.json";
  if (fs::exists(mpath)) {
    const Json old = read_json_file(mpath.string());
    if (!old.is_object() || old.value("hash", "") != manifest["hash"])
      throw IoError(located_message(mpath.string(), "/hash",
                                    "the sweep " + a.file + " (a sweep resumes into its own folder)",
                                    "another sweep's folder"));
  } else {
    try {
      reports::write_file(mpath.string(), manifest.dump(2) + "\n", false, "--out");
    } catch (const IoError&) {
      if (!fs::exists(mpath)) throw;  // another shard wrote it first: checked on its next resume
    }
  }

  // This shard's points not yet finished.
  const int64_t total = sweep::point_count(spec);
  std::vector<int64_t> pending;
  int64_t mine = 0, done = 0;
  for (int64_t i = shard.k; i < total; i += shard.n) {
    ++mine;
    const sweep::Point p = sweep::make_point(spec, i);
    if (fs::exists(points / (p.id + ".json"))) {
      ++done;
      // A worker of a killed sweep may have written its point but not removed its claim.
      const fs::path c = points / (p.id + ".claim");
      if (fs::exists(c)) {
        std::ifstream in(c);
        long holder = 0;
        in >> holder;
        if (!pid_alive(static_cast<pid_t>(holder))) fs::remove(c);
      }
    } else {
      pending.push_back(i);
    }
  }
  // Each status line goes out in one write: the ranks of an MPI job share one stderr, and a line
  // written in pieces interleaves with theirs.
  std::ostringstream head;
  head << "moesim: sweep " << spec.name << ": " << total << " points; shard " << shard.k << "/" << shard.n
       << (shard.from.empty() ? "" : " (" + shard.from + ")") << ": " << mine << " points, " << done
       << " already done, " << pending.size() << " to run on " << a.jobs << " worker"
       << (a.jobs > 1 ? "s" : "") << "\n";
  std::cerr << head.str() << std::flush;

  Progress progress(mine, done);
  int64_t failed = 0;
  std::map<pid_t, sweep::Point> running;
  const auto finish_child = [&](pid_t pid, int status) {
    auto it = running.find(pid);
    if (it == running.end()) return;
    const sweep::Point& p = it->second;
    const fs::path file = points / (p.id + ".json");
    if (!WIFEXITED(status) || !fs::exists(file)) {
      // The worker died before writing its point: record how.
      Json out{{"sweep", spec.name},
               {"index", p.index},
               {"id", p.id},
               {"values", p.values},
               {"status", "error"},
               {"exit_code", 1},
               {"error", WIFSIGNALED(status)
                             ? "the worker process ended by signal " + std::to_string(WTERMSIG(status))
                             : "the worker process ended without writing its point"}};
      reports::write_file(file.string(), out.dump() + "\n", true, "--out");
    }
    const Json written = read_json_file(file.string());
    if (written.value("status", "") != "ok") ++failed;
    fs::remove(points / (p.id + ".claim"));
    ++done;
    running.erase(it);
    progress.update(done, failed);
  };
  for (const int64_t i : pending) {
    while (static_cast<int>(running.size()) >= a.jobs) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, 0);
      if (pid > 0) finish_child(pid, status);
    }
    sweep::Point p = sweep::make_point(spec, i);
    if (fs::exists(points / (p.id + ".json"))) {
      ++done;
      continue;
    }
    if (!claim(points / (p.id + ".claim"))) continue;  // a live process is computing it
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    if (pid < 0)
      throw Error(std::string("moesim sweep: cannot start a worker process: ") + std::strerror(errno));
    if (pid == 0) {
      int code = 0;
      try {
        const Json out = run_point(spec, p, a.engine, cat);
        reports::write_file((points / (p.id + ".json")).string(), out.dump() + "\n", true, "--out");
        // Logged once written: a point killed before its file exists is computed again and logged then,
        // one killed after is never computed again; so no id is ever logged twice.
        append_line(dir / "computed.log", p.id);
        std::error_code ignore;
        fs::remove(points / (p.id + ".claim"), ignore);  // the point is written: nobody needs the claim
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
    running.emplace(pid, std::move(p));
  }
  while (!running.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid > 0) finish_child(pid, status);
  }
  progress.finish();
  std::ostringstream tail;
  tail << "moesim: sweep " << spec.name << ": shard " << shard.k << "/" << shard.n << ": " << done << " of "
       << mine << " points present, " << failed << " failed this run; results in " << points.string() << "\n";
  std::cerr << tail.str() << std::flush;
  return 0;
}

int report_merge_cmd(const std::string& dir_text) {
  const fs::path dir = dir_text;
  const fs::path mpath = dir / "sweep.json";
  std::error_code ec;
  if (!fs::is_regular_file(mpath, ec))
    throw IoError(located_message(mpath.string(), "", "a sweep folder's sweep.json (moesim sweep --out DIR)",
                                  fs::exists(dir, ec) ? "none" : "no such folder"));
  const Json manifest = read_json_file(mpath.string());
  std::vector<std::string> pointers;
  if (manifest.contains("axes") && manifest["axes"].is_array())
    for (const auto& ax : manifest["axes"]) pointers.push_back(ax.value("pointer", ""));
  // Index every point file first (index and path only), then stream them in index order.
  std::vector<std::pair<int64_t, fs::path>> files;
  for (const auto& e : fs::directory_iterator(dir / "points", ec))
    if (e.path().extension() == ".json") {
      const Json j = read_json_file(e.path().string());
      if (!j.is_object() || !j.contains("index") || !j["index"].is_number_integer())
        throw ParseError(
            located_message(e.path().string(), "/index", "a sweep point file", describe_json(j)));
      files.emplace_back(j["index"].get<int64_t>(), e.path());
    }
  std::sort(files.begin(), files.end());
  const auto field = [](const Json& j) {
    std::string s = j.is_string() ? j.get<std::string>() : j.dump();
    if (s.find_first_of(",\"\n") != std::string::npos) {
      std::string q = "\"";
      for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      return q + "\"";
    }
    return s;
  };
  // One row per point, read from its file when written: memory stays bounded by one point.
  const auto each_row = [&](const std::function<void(const Json&)>& f) {
    for (const auto& [index, path] : files) {
      const Json j = read_json_file(path.string());
      const Json none = Json::object();
      const Json& result = j.contains("result") && j["result"].is_object() ? j["result"] : none;
      const Json sum = result.value("summary", Json::object());
      const Json mem = result.value("memory_bytes", Json::object());
      f(Json{{"index", index},
             {"id", j.value("id", "")},
             {"status", j.value("status", "")},
             {"exit_code", j.value("exit_code", 0)},
             {"values", j.value("values", Json::object())},
             {"step_time_s", sum.value("step_time_s", Json())},
             {"tokens_per_s_per_gpu", sum.value("tokens_per_s_per_gpu", Json())},
             {"mfu", sum.value("mfu", Json())},
             {"feasible", sum.value("feasible", Json())},
             {"memory_total_bytes", mem.value("total", Json())},
             {"error", j.value("error", "")}});
    }
  };
  const auto closed = [](std::ofstream& o, const std::string& tmp) {
    o.close();
    if (!o) throw IoError(located_message(tmp, "", "a writable file", "a write error"));
  };
  reports::OutputSet set;
  set.add_with((dir / "merged.csv").string(), [&](const std::string& tmp) {
    std::ofstream csv(tmp, std::ios::binary);
    csv << "index,id,status,exit_code";
    for (const auto& p : pointers) csv << "," << field(Json(p));
    csv << ",step_time_s,tokens_per_s_per_gpu,mfu,feasible,memory_total_bytes,error\n";
    each_row([&](const Json& row) {
      csv << row["index"].dump() << "," << field(row["id"]) << "," << field(row["status"]) << ","
          << row["exit_code"].dump();
      for (const auto& p : pointers) csv << "," << field(row["values"].value(p, Json()));
      for (const char* k : {"step_time_s", "tokens_per_s_per_gpu", "mfu", "feasible", "memory_total_bytes"})
        csv << "," << (row[k].is_null() ? "" : field(row[k]));
      csv << "," << field(row["error"]) << "\n";
    });
    closed(csv, tmp);
  });
  set.add_with((dir / "merged.json").string(), [&](const std::string& tmp) {
    std::ofstream json(tmp, std::ios::binary);
    json << "[";
    bool first = true;
    each_row([&](const Json& row) {
      json << (first ? "\n" : ",\n") << row.dump();
      first = false;
    });
    json << "\n]\n";
    closed(json, tmp);
  });
  set.commit();
  std::cerr << "moesim: report merge: " << files.size() << " points into " << (dir / "merged.csv").string()
            << " and merged.json\n";
  return 0;
}

}  // namespace moesim::cli
