#include "cli/des_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <string>

#include "cli/errors.hpp"
#include "reports/result_json.hpp"
#include "reports/serving.hpp"
#include "scenarios/error.hpp"
#include "sim/serving_sim.hpp"
#include "sim/step_sim.hpp"

namespace moesim::cli {

namespace {

// Runs `work` in a child process and returns the JSON it produced, or throws the error it raised (with
// its type). `what` names the evaluation in messages.
nlohmann::json in_child(const std::function<nlohmann::json()>& work, const std::string& what) {
  int fd[2];
  if (pipe(fd) != 0) throw Error("cannot create a pipe for the simulation process of " + what);
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw Error("cannot fork the simulation process of " + what);
  if (pid == 0) {
    close(fd[0]);
    nlohmann::json j;
    try {
      j = {{"result", work()}};
    } catch (const std::exception& e) {
      j = {{"error", error_json(e)}};
    }
    const std::string text = j.dump();
    std::size_t off = 0;
    while (off < text.size()) {
      const ssize_t n = write(fd[1], text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty())
    throw Error("the simulation process of " + what + " ended abnormally");
  const nlohmann::json j = nlohmann::json::parse(text);
  if (j.contains("error")) throw_error_json(j.at("error"));
  return j.at("result");
}

}  // namespace

models::Result evaluate_des_isolated(const Scenario& s) {
  const nlohmann::json r = in_child(
      [&] {
        return reports::result_json(s, sim::simulate_step(s, sim::step_options(s.engine)).result, nullptr,
                                    reports::ResultDetail::kComplete);
      },
      "\"" + s.name + "\"");
  return reports::result_from_json(r, "compare: the simulation process of \"" + s.name + "\"");
}

models::ServingResult evaluate_serving_des_isolated(const Scenario& s) {
  const nlohmann::json r = in_child(
      [&] { return reports::serving_json(s, sim::simulate_serving(s, models::serving_requests(s))); },
      "\"" + s.name + "\"");
  return reports::serving_result_from_json(r, "the simulation process of \"" + s.name + "\"");
}

}  // namespace moesim::cli
