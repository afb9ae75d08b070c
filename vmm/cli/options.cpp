#include "vmm/cli/options.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>

#include "base/error.hpp"
#include "vmm/cli/device_options.hpp"
#include "vmm/cli/size_parser.hpp"

#ifndef VMM_VERSION
#define VMM_VERSION "0.0.0"
#endif

namespace vmm::cli {

namespace {

SerialConfig parse_serial(const std::string& text) {
    if (text == "stdio") return {SerialConfig::Mode::Stdio, {}};
    if (text == "none") return {SerialConfig::Mode::None, {}};
    if (text.rfind("file:", 0) == 0 && text.size() > 5) {
        return {SerialConfig::Mode::File, text.substr(5)};
    }
    throw base::Error("--serial {} is not one of stdio, none, file:PATH", text);
}

struct RawRunOptions {
    std::string kernel;
    std::string initrd;
    std::string cmdline = kDefaultCmdline;
    std::string memory = "512M";
    std::int64_t cpus = 1;
    std::string serial = "stdio";
    std::string log_level = "info";
    std::vector<std::string> disks;
    std::vector<std::string> nets;
    bool rng = false;
    std::string console;
    std::string vsock;
    std::vector<std::string> devices;
};

// CLI11 2.1 reads a set_config() file only for the top-level app, never for
// a subcommand (CLIUtils/CLI11#1056), so `run --config` is applied here, after
// the command line: keys are the flag names without "--", a flag given on the
// command line wins, and an unknown key is an error instead of being ignored.
void apply_config_file(CLI::App& command, const std::string& path) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) {
        throw CLI::FileError(fmt::format("--config {} is not a readable file", path));
    }
    for (const CLI::ConfigItem& item : CLI::ConfigTOML().from_file(path)) {
        if (item.name == "++" || item.name == "--") continue;  // [section] markers
        CLI::Option* option =
            item.parents.empty() ? command.get_option_no_throw("--" + item.name) : nullptr;
        if (option == nullptr || !option->get_configurable()) {
            throw CLI::ConfigError(
                fmt::format("--config {}: unknown key '{}'", path, item.fullname()));
        }
        if (option->count() > 0) continue;
        option->add_result(item.inputs);
        option->run_callback();  // converts into RawRunOptions; throws ConversionError
    }
}

MachineConfig validate(const RawRunOptions& raw) {
    if (raw.kernel.empty()) {
        throw base::Error("--kernel is required, on the command line or in the --config file");
    }
    MachineConfig config;
    config.kernel_path = raw.kernel;
    if (!raw.initrd.empty()) config.initrd_path = raw.initrd;
    config.cmdline = raw.cmdline;

    const auto memory = parse_size(raw.memory);
    if (!memory) {
        throw base::Error("--memory {} is not a size (use a number with K, M or G, e.g. 512M)",
                          raw.memory);
    }
    if (*memory < kMinMemory || *memory > kMaxMemory) {
        throw base::Error(
            "--memory {} is outside the supported 16M to {}G (RAM must end below the 64-bit PCI "
            "window at {} GiB)",
            raw.memory, kMaxMemory / x86::GiB, x86::kPciMmio64Start / x86::GiB);
    }
    if (*memory % 4096 != 0) throw base::Error("--memory {} is not a multiple of 4K", raw.memory);
    config.memory_bytes = *memory;

    if (raw.cpus < 1 || raw.cpus > static_cast<std::int64_t>(kMaxCpus)) {
        throw base::Error("--cpus {} is outside the supported 1 to {}", raw.cpus, kMaxCpus);
    }
    config.cpus = static_cast<std::uint32_t>(raw.cpus);
    config.serial = parse_serial(raw.serial);
    for (const auto& disk : raw.disks) config.disks.push_back(parse_disk(disk));
    for (const auto& text : raw.nets) {
        NetConfig net = parse_net(text);
        for (const auto& other : config.nets) {
            if (other.tap == net.tap) {
                throw base::Error("--net {}: tap {} is given twice", text, net.tap);
            }
        }
        config.nets.push_back(std::move(net));
    }
    config.virtio_rng = raw.rng;
    if (!raw.console.empty()) config.console = parse_console(raw.console);
    if (!raw.vsock.empty()) config.vsock = parse_vsock(raw.vsock);
    for (const auto& text : raw.devices) {
        PassthroughConfig device = parse_device(text);
        for (const auto& other : config.passthrough) {
            if (other.host == device.host) {
                throw base::Error("--device {}: {} is given twice", text, device.host);
            }
        }
        config.passthrough.push_back(std::move(device));
    }
    return config;
}

}  // namespace

ParsedCommand parse_command_line(const std::vector<std::string>& arguments) {
    CLI::App app("vmm: a KVM virtual machine monitor built for device passthrough", "vmm");
    app.set_version_flag("--version", fmt::format("vmm {}", VMM_VERSION));
    app.require_subcommand(1);

    RawRunOptions raw;
    std::string config_path;
    auto* run = app.add_subcommand("run", "Boot a Linux kernel in a new VM");
    run->add_option("--config", config_path, "TOML file with the same keys as the flags; flags win")
        ->configurable(false);
    // Required, but checked in validate(): the config file may supply it.
    run->add_option("--kernel", raw.kernel,
                    "Linux bzImage, or ELF vmlinux with a PVH note (required)");
    run->add_option("--initrd", raw.initrd, "initramfs image");
    run->add_option("--cmdline", raw.cmdline, "kernel command line")->capture_default_str();
    run->add_option("--memory", raw.memory, "guest RAM: a number with K, M or G (bare = MiB)")
        ->capture_default_str();
    run->add_option("--cpus", raw.cpus, "number of vCPUs, 1 to 64")->capture_default_str();
    run->add_option("--serial", raw.serial, "COM1 goes to: stdio, file:PATH or none")
        ->capture_default_str();
    run->add_option("--log-level", raw.log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    run->add_option("--disk", raw.disks,
                    "virtio-blk disk: path=FILE[,readonly=on][,serial=ID][,queues=N] (repeatable)")
        ->take_all()
        ->allow_extra_args(false);
    run->add_option("--net", raw.nets,
                    "virtio-net NIC on a tap: tap=NAME[,mac=52:54:00:12:34:56] (repeatable)")
        ->take_all()
        ->allow_extra_args(false);
    run->add_flag("--rng", raw.rng, "virtio-rng device fed by the host's getrandom()");
    run->add_option("--console", raw.console,
                    "virtio-console (guest /dev/hvc0) to: socket=PATH (listens there), file=PATH "
                    "(appends guest output) or pty");
    run->add_option("--device", raw.devices,
                    "host PCI device passed through with VFIO: vfio=0000:00:10.0 (its PCI "
                    "address; bound to vfio-pci) or vfio=/dev/vfio/devices/vfioN (repeatable)")
        ->take_all()
        ->allow_extra_args(false);
    run->add_option("--vsock", raw.vsock,
                    "virtio-vsock run by the host's vhost-vsock: cid=N, the guest's context ID "
                    "(3 to 4294967294)");

    ParsedCommand result;
    // CLI11 wants argv-style input; arguments[0] is the program name.
    std::vector<const char*> argv;
    // argc may be 0 (execve with an empty argv); CLI11 would then reserve
    // SIZE_MAX entries and throw std::length_error past the handlers below.
    if (arguments.empty()) argv.push_back("vmm");
    for (const auto& argument : arguments) argv.push_back(argument.c_str());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
        if (!config_path.empty()) apply_config_file(*run, config_path);
    } catch (const CLI::CallForHelp&) {
        result.exit_code = 0;
        result.message = run->parsed() ? run->help() : app.help();
        return result;
    } catch (const CLI::CallForVersion&) {
        result.exit_code = 0;
        result.message = fmt::format("vmm {}\n", VMM_VERSION);
        return result;
    } catch (const CLI::Success&) {
        result.exit_code = 0;
        result.message = app.help();
        return result;
    } catch (const CLI::ParseError& error) {
        result.exit_code = 1;
        result.message = fmt::format("vmm: error: {}\n", error.what());
        return result;
    }

    try {
        const auto level = log::parse_level(raw.log_level);
        if (!level)
            throw base::Error(
                "--log-level {} is not one of trace, debug, info, warn, "
                "error, off",
                raw.log_level);
        result.log_level = *level;
        result.config = validate(raw);
    } catch (const base::Error& error) {
        result.exit_code = 1;
        result.message = fmt::format("vmm: error: {}\n", error.what());
        return result;
    }
    result.action = ParsedCommand::Action::Run;
    return result;
}

}  // namespace vmm::cli
