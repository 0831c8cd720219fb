#include "cli/des_process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "scenarios/error.hpp"
#include "sim/step_sim.hpp"

namespace moesim::cli {

models::Result evaluate_des_isolated(const Scenario& s) {
  using Json = nlohmann::json;
  int fd[2];
  if (pipe(fd) != 0) throw Error("compare: cannot create a pipe for the simulation process");
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) throw Error("compare: cannot fork the simulation process");
  if (pid == 0) {
    close(fd[0]);
    Json j;
    try {
      const auto r = sim::simulate_step(s, sim::step_options(s.engine)).result;
      j = {{"ok", true},
           {"feasible", r.feasible},
           {"infeasible_reason", r.infeasible_reason},
           {"step_time", r.step_time},
           {"tokens_per_second", r.tokens_per_second},
           {"tokens_per_second_per_gpu", r.tokens_per_second_per_gpu},
           {"mfu", r.mfu},
           {"memory_total", r.memory.total},
           {"moe_max_over_mean_gpu", r.moe_max_over_mean_gpu},
           {"balanced_step_time", r.balanced_step_time},
           {"fidelity", r.fidelity},
           {"bubble", r.breakdown.bubble},
           {"exposed_ep", r.breakdown.exposed_ep}};
    } catch (const ConfigError& e) {
      j = {{"ok", false}, {"config", true}, {"message", e.what()}};
    } catch (const std::exception& e) {
      j = {{"ok", false}, {"config", false}, {"message", e.what()}};
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
  if (!WIFEXITED(status) || text.empty())
    throw Error("compare: the simulation process of \"" + s.name + "\" ended abnormally");
  const Json j = Json::parse(text);
  if (!j.at("ok").get<bool>()) {
    if (j.at("config").get<bool>()) throw ConfigError(j.at("message").get<std::string>());
    throw Error(j.at("message").get<std::string>());
  }
  models::Result r;
  r.scenario = s.name;
  r.engine = "des";
  r.feasible = j.at("feasible").get<bool>();
  r.infeasible_reason = j.at("infeasible_reason").get<std::string>();
  r.step_time = j.at("step_time").get<double>();
  r.tokens_per_second = j.at("tokens_per_second").get<double>();
  r.tokens_per_second_per_gpu = j.at("tokens_per_second_per_gpu").get<double>();
  r.mfu = j.at("mfu").get<double>();
  r.memory.total = j.at("memory_total").get<double>();
  r.moe_max_over_mean_gpu = j.at("moe_max_over_mean_gpu").get<double>();
  r.balanced_step_time = j.at("balanced_step_time").get<double>();
  r.fidelity = j.at("fidelity").get<std::string>();
  r.breakdown.bubble = j.at("bubble").get<double>();
  r.breakdown.exposed_ep = j.at("exposed_ep").get<double>();
  return r;
}

}  // namespace moesim::cli
