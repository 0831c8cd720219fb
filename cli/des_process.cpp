#include "cli/des_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "cli/errors.hpp"
#include "reports/result_json.hpp"
#include "scenarios/error.hpp"
#include "sim/step_sim.hpp"

namespace moesim::cli {

models::Result evaluate_des_isolated(const Scenario& s) {
  int fd[2];
  if (pipe(fd) != 0) throw Error("compare: cannot create a pipe for the simulation process");
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw Error("compare: cannot fork the simulation process");
  if (pid == 0) {
    close(fd[0]);
    nlohmann::json j;
    try {
      const auto r = sim::simulate_step(s, sim::step_options(s.engine)).result;
      j = {{"result", reports::result_json(s, r, nullptr, reports::ResultDetail::kComplete)}};
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
    throw Error("compare: the simulation process of \"" + s.name + "\" ended abnormally");
  const nlohmann::json j = nlohmann::json::parse(text);
  if (j.contains("error")) throw_error_json(j.at("error"));
  return reports::result_from_json(j.at("result"), "compare: the simulation process of \"" + s.name + "\"");
}

}  // namespace moesim::cli
