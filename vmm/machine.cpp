#include "vmm/machine.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <optional>

#include "devices/legacy/acpi_sleep_control.hpp"
#include "devices/legacy/i8042.hpp"
#include "vmm/acpi/acpi_tables.hpp"
#include "vmm/boot/linux_loader.hpp"
#include "vmm/log.hpp"
#include "vmm/read_file.hpp"
#include "vmm/terminal_guard.hpp"
#include "vmm/x86/boot_msrs.hpp"
#include "vmm/x86/cpu_state.hpp"
#include "vmm/x86/cpuid.hpp"

namespace vmm {

namespace {

// Kernels and initrds larger than this are certainly a wrong path.
constexpr std::uint64_t kMaxKernelSize = 512 * x86::MiB;
constexpr std::uint64_t kMaxInitrdSize = 2 * x86::GiB;

// Ctrl-A then 'x' quits, as in QEMU: Ctrl-C belongs to the guest.
constexpr std::uint8_t kEscapeKey = 0x01;

// How often stop_vcpus() repeats its kicks, and when it says it is slow.
constexpr int kRekickIntervalMs = 10;
constexpr std::chrono::seconds kSlowStopWarning{2};

kvm_fpu initial_fpu() {
    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word: all exceptions masked
    fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
    return fpu;
}

// LINT0 delivers the legacy PIC's ExtINT, LINT1 the NMI, as firmware would
// leave them; Linux relies on it when it uses the PIC in virtual-wire mode.
void set_lapic_lints(kvm::KvmVcpu& vcpu) {
    constexpr std::size_t kLvtLint0 = 0x350;
    constexpr std::size_t kLvtLint1 = 0x360;
    constexpr std::uint32_t kDeliveryModeMask = 0x700;
    constexpr std::uint32_t kExtInt = 0x700;
    constexpr std::uint32_t kNmi = 0x400;
    auto lapic = vcpu.lapic();
    auto update = [&lapic](std::size_t offset, std::uint32_t mode) {
        std::uint32_t value;
        std::memcpy(&value, &lapic.regs[offset], sizeof(value));
        value = (value & ~kDeliveryModeMask) | mode;
        std::memcpy(&lapic.regs[offset], &value, sizeof(value));
    };
    update(kLvtLint0, kExtInt);
    update(kLvtLint1, kNmi);
    vcpu.set_lapic(lapic);
}

}  // namespace

Machine::Machine(MachineConfig config)
    : config_(std::move(config)),
      memory_(GuestMemory::create_x86(config_.memory_bytes)),
      boot_entry_(load_guest(config_, memory_)),
      serial_output_(config_.serial, stop_),
      kvm_(kvm::KvmSystem::open()),
      vm_(kvm::KvmVm::create(kvm_)) {
    if (!kvm::host_has_hardware_virtualization()) {
        log::warn(
            "this host's KVM has no hardware virtualization (no vmx/svm: PVM); a kernel "
            "that is not PVM-aware runs emulated and very slowly; use the lab (docs/LAB.md)");
    }
    if (static_cast<int>(config_.cpus) > kvm_.max_vcpus()) {
        throw base::Error("--cpus {} exceeds this host's KVM limit of {}", config_.cpus,
                          kvm_.max_vcpus());
    }
    vm_.create_irqchip_and_pit();
    vm_.map_guest_memory(memory_);
    create_devices();
    create_vcpus();
}

Machine::~Machine() {
    stop_vcpus();
}

void Machine::stop_vcpus() noexcept {
    // The stop reason first: a vCPU blocked in a host call (the serial
    // sink's write) gives up on the kick only once the VM is stopping. A
    // no-op when a reason is there, as on every path but an exception.
    try {
        stop_.request(StopReason::HostError, "the VMM stopped its vCPUs after a host error");
    } catch (...) {
        // Only the record is lost: the kicks below stop the vCPUs anyway.
    }
    const auto started = std::chrono::steady_clock::now();
    bool warned = false;
    std::vector<pollfd> running;
    running.reserve(vcpus_.size());
    for (;;) {
        running.clear();
        for (auto& vcpu : vcpus_) {
            if (vcpu->exited()) continue;
            vcpu->kick();
            running.push_back({vcpu->exited_fd(), POLLIN, 0});
        }
        if (running.empty()) break;
        // Kick again after a while: a kick that landed just before the vCPU
        // blocked in the host is lost, and the next one interrupts it.
        ::poll(running.data(), running.size(), kRekickIntervalMs);
        if (!warned && std::chrono::steady_clock::now() - started > kSlowStopWarning) {
            warned = true;
            log::warn("{} vCPU(s) still running {} s after the stop; kicking them until they stop",
                      running.size(), kSlowStopWarning.count());
        }
    }
    for (auto& vcpu : vcpus_) vcpu->join();
}

void Machine::create_devices() {
    serial_ = std::make_shared<devices::Serial16550>(
        [this](std::span<const std::uint8_t> bytes) { serial_output_.write(bytes); },
        [this] {
            // ISA IRQs are edge-triggered: a pulse is one interrupt.
            vm_.set_irq_line(x86::kCom1Irq, true);
            vm_.set_irq_line(x86::kCom1Irq, false);
        });
    pio_bus_.insert(serial_, x86::kCom1Port, 8);
    pio_bus_.insert(std::make_shared<devices::I8042>(stop_.callback()), x86::kI8042DataPort,
                    x86::kI8042CommandPort - x86::kI8042DataPort + 1);
    pio_bus_.insert(std::make_shared<devices::AcpiSleepControl>(stop_.callback()),
                    x86::kAcpiSleepControlPort, 2);
    pci_ = std::make_unique<devices::pci::PciPlatform>(vm_, memory_, mmio_bus_, pio_bus_, config_);
}

boot::BootEntry Machine::load_guest(const MachineConfig& config, GuestMemory& memory) {
    boot::BootRequest request;
    request.kernel = read_file(config.kernel_path, "kernel", kMaxKernelSize);
    if (config.initrd_path)
        request.initrd = read_file(*config.initrd_path, "initrd", kMaxInitrdSize);
    request.cmdline = config.cmdline;
    request.kernel_name = config.kernel_path;
    if (config.initrd_path) request.initrd_name = *config.initrd_path;
    request.rsdp_address = acpi::write_acpi_tables(memory, acpi::AcpiTablesConfig{config.cpus});
    return boot::load_kernel(memory, request);
}

void Machine::create_vcpus() {
    VcpuRunner::install_kick_handler();
    for (std::uint32_t id = 0; id < config_.cpus; ++id) {
        auto vcpu = kvm::KvmVcpu::create(kvm_, vm_, id);
        vcpu.set_cpuid(x86::make_vcpu_cpuid(kvm_.supported_cpuid(), id, config_.cpus));
        const auto msrs = x86::boot_msrs();
        vcpu.set_msrs(msrs);
        vcpu.set_fpu(initial_fpu());
        set_lapic_lints(vcpu);
        if (id == 0) {
            // Only the bootstrap processor starts at the kernel entry; the
            // others wait in KVM for the guest's INIT/SIPI.
            const auto state = x86::boot_cpu_state(memory_, boot_entry_, vcpu.sregs());
            vcpu.set_sregs(state.sregs);
            vcpu.set_regs(state.regs);
        }
        vcpus_.push_back(std::make_unique<VcpuRunner>(std::move(vcpu), pio_bus_, mmio_bus_, stop_));
    }
    log::debug("loaded {} with {} vCPUs and {} MiB", config_.kernel_path, config_.cpus,
               config_.memory_bytes / x86::MiB);
}

int Machine::exit_code_for(const StopController::Outcome& outcome) const {
    switch (outcome.reason) {
        case StopReason::PowerOff:
        case StopReason::Reboot:
            return kExitGuestStopped;
        case StopReason::GuestFailure:
            return kExitGuestFailure;
        case StopReason::HostError:
            return kExitHostError;
        case StopReason::Signal:
            return kExitSignalBase + stop_signal_;
    }
    return kExitHostError;
}

int Machine::run() {
    // SIGINT/SIGTERM arrive through a signalfd in this loop; blocking them
    // first means every thread created below inherits the block.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    if (::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
        throw base::Error("cannot block SIGINT/SIGTERM");
    }
    base::UniqueFd signal_fd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd) base::throw_errno("signalfd for SIGINT/SIGTERM");

    // The terminal is the guest's console only with --serial stdio: in raw
    // mode otherwise, nothing would read it and Ctrl-C would be dead.
    const bool forward_stdin = config_.serial.mode == SerialConfig::Mode::Stdio;
    std::optional<TerminalGuard> terminal;
    if (forward_stdin) terminal.emplace(STDIN_FILENO);
    const bool escape_enabled = terminal && terminal->active();
    bool stdin_open = forward_stdin;
    bool escape_pending = false;
    std::vector<std::uint8_t> pending_input;

    // Destroyed before the terminal guard: whichever way run() is left, an
    // exception included (a thread that cannot be created, poll failing,
    // KVM_IRQ_LINE failing for terminal input), the vCPUs stop and are
    // joined first, and the terminal is restored after them.
    struct StopVcpusOnExit {
        Machine& machine;
        ~StopVcpusOnExit() { machine.stop_vcpus(); }
    } stop_vcpus_on_exit{*this};

    for (auto& vcpu : vcpus_) vcpu->start();

    while (!stop_.stopping()) {
        std::array<pollfd, 3> fds{};
        fds[0] = {stop_.event_fd(), POLLIN, 0};
        fds[1] = {signal_fd.get(), POLLIN, 0};
        nfds_t count = 2;
        // Only read the terminal while the UART can take it; when its FIFO is
        // full, retry on a short poll timeout as the guest drains it.
        if (stdin_open && pending_input.empty()) fds[count++] = {STDIN_FILENO, POLLIN, 0};
        const int timeout_ms = pending_input.empty() ? -1 : 10;
        if (::poll(fds.data(), count, timeout_ms) < 0) {
            if (errno == EINTR) continue;
            base::throw_errno("poll in the VM event loop");
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
                stop_signal_ = static_cast<int>(info.ssi_signo);
                stop_.request(StopReason::Signal,
                              fmt::format("received {}", ::strsignal(stop_signal_)));
            }
        }
        if (count == 3 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            std::array<std::uint8_t, 256> buffer{};
            const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
            if (n <= 0) {
                stdin_open = false;  // EOF or error: the guest just gets no more input
            } else {
                for (ssize_t i = 0; i < n; ++i) {
                    const std::uint8_t byte = buffer[static_cast<std::size_t>(i)];
                    if (escape_enabled && escape_pending) {
                        escape_pending = false;
                        if (byte == 'x') {
                            stop_signal_ = SIGINT;
                            stop_.request(StopReason::Signal, "Ctrl-A x pressed");
                            break;
                        }
                        if (byte != kEscapeKey) pending_input.push_back(kEscapeKey);
                    } else if (escape_enabled && byte == kEscapeKey) {
                        escape_pending = true;
                        continue;
                    }
                    pending_input.push_back(byte);
                }
            }
        }
        if (!pending_input.empty()) {
            const auto accepted = serial_->enqueue_input(pending_input);
            pending_input.erase(pending_input.begin(),
                                pending_input.begin() + static_cast<std::ptrdiff_t>(accepted));
        }
    }

    stop_vcpus();

    const auto outcome = stop_.outcome();
    if (!outcome) return kExitHostError;
    const int code = exit_code_for(*outcome);
    if (outcome->reason == StopReason::HostError) {
        log::fatal("{}", outcome->detail);
    } else {
        log::info("VM stopped: {} ({})", to_string(outcome->reason), outcome->detail);
    }
    return code;
}

}  // namespace vmm
