// Command line and TOML config parsing into a MachineConfig. No I/O beyond
// reading the config file: printing help or errors is the caller's job.
#pragma once

#include <string>
#include <vector>

#include "vmm/log.hpp"
#include "vmm/machine_config.hpp"

namespace vmm::cli {

struct ParsedCommand {
    // Run: boot `config`. Exit: print `message` (to stdout when exit_code is
    // 0, else stderr) and exit with `exit_code` — help, version or an error.
    enum class Action { Run, Exit };
    Action action = Action::Exit;
    MachineConfig config;
    log::Level log_level = log::Level::Info;
    int exit_code = 0;
    std::string message;
};

ParsedCommand parse_command_line(const std::vector<std::string>& arguments);

}  // namespace vmm::cli
