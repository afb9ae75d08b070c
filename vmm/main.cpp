// `vmm` entry point: parse, build the machine, run it, map errors to one
// line on stderr and an exit code.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "vmm/cli/options.hpp"
#include "vmm/log.hpp"
#include "vmm/machine.hpp"

int main(int argc, char** argv) {
    // A reader that goes away (`vmm run ... | head`) must turn writes into
    // EPIPE, which the serial sink reports once and survives, instead of
    // killing the VMM without a word (exit 141) with the guest still running.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, nullptr);

    std::vector<std::string> arguments(argv, argv + argc);
    const auto command = vmm::cli::parse_command_line(arguments);
    if (command.action == vmm::cli::ParsedCommand::Action::Exit) {
        std::fputs(command.message.c_str(), command.exit_code == 0 ? stdout : stderr);
        return command.exit_code;
    }
    vmm::log::set_level(command.log_level);
    try {
        vmm::Machine machine(command.config);
        return machine.run();
    } catch (const std::exception& error) {
        vmm::log::fatal("{}", error.what());
        return vmm::kExitHostError;
    }
}
