#include "vmm/vcpu_runner.hpp"

#include <fmt/format.h>

#include <csignal>
#include <system_error>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "vmm/log.hpp"
#include "vmm/x86/register_dump.hpp"

namespace vmm {

namespace {

void ignore_kick(int) {}

constexpr std::uint64_t kUnclaimedLogLimit = 16;

}  // namespace

// Real-time signal reserved for kicking vCPU threads out of KVM_RUN.
int VcpuRunner::kick_signal() {
    return SIGRTMIN;
}

void VcpuRunner::install_kick_handler() {
    struct sigaction action {};
    action.sa_handler = ignore_kick;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: KVM_RUN must return EINTR so the loop sees the stop flag.
    action.sa_flags = 0;
    if (::sigaction(kick_signal(), &action, nullptr) != 0) {
        base::throw_errno("installing the vCPU kick signal handler");
    }
}

VcpuRunner::VcpuRunner(kvm::KvmVcpu vcpu, const Bus& pio_bus, const Bus& mmio_bus,
                       StopController& stop)
    : vcpu_(std::move(vcpu)),
      pio_bus_(pio_bus),
      mmio_bus_(mmio_bus),
      stop_(stop),
      exited_fd_(base::make_eventfd("vCPU {} exit", vcpu_.id())) {}

VcpuRunner::~VcpuRunner() {
    if (thread_.joinable()) {
        kick();
        thread_.join();
    }
}

void VcpuRunner::start() {
    try {
        thread_ = std::thread([this] { thread_main(); });
    } catch (const std::system_error& error) {
        throw base::SystemError(error.code().value(),
                                fmt::format("creating the thread of vCPU {}", vcpu_.id()));
    }
    const auto name = fmt::format("vcpu{}", vcpu_.id());
    ::pthread_setname_np(thread_.native_handle(), name.c_str());
    started_.store(true, std::memory_order_release);
}

void VcpuRunner::kick() {
    // Without a flag of its own the loop would only see stop_.stopping():
    // kicked on a path that requested no stop (an exception out of
    // Machine::run), it would spin on KVM_RUN's EINTR forever.
    exit_requested_.store(true, std::memory_order_release);
    // immediate_exit makes a KVM_RUN that has not yet entered the guest
    // return at once; the signal interrupts one that has.
    __atomic_store_n(&vcpu_.run_state().immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (started_.load(std::memory_order_acquire) && thread_.joinable()) {
        ::pthread_kill(thread_.native_handle(), kick_signal());
    }
}

bool VcpuRunner::exited() const {
    return !started_.load(std::memory_order_acquire) || exited_.load(std::memory_order_acquire);
}

void VcpuRunner::join() {
    if (thread_.joinable()) thread_.join();
}

void VcpuRunner::thread_main() {
    sigset_t kick_set;
    sigemptyset(&kick_set);
    sigaddset(&kick_set, kick_signal());
    ::pthread_sigmask(SIG_UNBLOCK, &kick_set, nullptr);
    try {
        while (!stop_.stopping() && !exit_requested_.load(std::memory_order_acquire)) {
            if (vcpu_.run()) handle_exit();
        }
    } catch (const std::exception& error) {
        stop_.request(StopReason::HostError, fmt::format("vCPU {}: {}", vcpu_.id(), error.what()));
    }
    exited_.store(true, std::memory_order_release);
    base::signal_eventfd(exited_fd_.get());
}

void VcpuRunner::fail(StopReason reason, const std::string& what) {
    std::string state;
    try {
        state = x86::format_registers(vcpu_.regs(), vcpu_.sregs());
    } catch (const std::exception& error) {
        state = fmt::format("(registers unavailable: {})", error.what());
    }
    log::fatal("vCPU {}: {}\n{}", vcpu_.id(), what, state);
    stop_.request(reason, fmt::format("vCPU {}: {}", vcpu_.id(), what));
}

void VcpuRunner::note_unclaimed(const char* kind, std::uint64_t address, bool is_write) {
    // A guest probing absent hardware is normal; log the first few only.
    if (++unclaimed_accesses_ <= kUnclaimedLogLimit) {
        log::debug("vCPU {}: unclaimed {} {} at {:#x}", vcpu_.id(), kind,
                   is_write ? "write" : "read", address);
    }
}

void VcpuRunner::handle_io(const kvm_run& run) {
    const auto& io = run.io;
    auto data = vcpu_.io_data();
    const bool is_write = io.direction == KVM_EXIT_IO_OUT;
    // String I/O (rep ins/outs) arrives as `count` items of `size` bytes.
    for (std::uint32_t i = 0; i < io.count; ++i) {
        auto item = data.subspan(static_cast<std::size_t>(i) * io.size, io.size);
        const bool claimed =
            is_write ? pio_bus_.write(io.port, item) : pio_bus_.read(io.port, item);
        if (!claimed) note_unclaimed("port", io.port, is_write);
    }
}

void VcpuRunner::handle_mmio(kvm_run& run) {
    auto& mmio = run.mmio;
    const std::size_t length = std::min<std::size_t>(mmio.len, sizeof(mmio.data));
    std::span<std::uint8_t> data(mmio.data, length);
    const bool claimed = mmio.is_write ? mmio_bus_.write(mmio.phys_addr, data)
                                       : mmio_bus_.read(mmio.phys_addr, data);
    if (!claimed) note_unclaimed("MMIO", mmio.phys_addr, mmio.is_write != 0);
}

void VcpuRunner::handle_exit() {
    auto& run = vcpu_.run_state();
    switch (run.exit_reason) {
        case KVM_EXIT_IO:
            handle_io(run);
            break;
        case KVM_EXIT_MMIO:
            handle_mmio(run);
            break;
        case KVM_EXIT_HLT:
            // Only reached without an in-kernel LAPIC; nothing to do.
            break;
        case KVM_EXIT_SHUTDOWN:
            // On AMD, KVM re-initialises the vCPU before reporting the
            // shutdown, so the dump shows the reset state, not the fault.
            fail(StopReason::GuestFailure,
                 "triple fault (KVM_EXIT_SHUTDOWN; on AMD the registers below are already reset)");
            break;
        case KVM_EXIT_FAIL_ENTRY:
            fail(StopReason::GuestFailure,
                 fmt::format("VM entry failed, hardware reason {:#x}",
                             run.fail_entry.hardware_entry_failure_reason));
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            fail(StopReason::GuestFailure,
                 fmt::format("KVM internal error, suberror {}", run.internal.suberror));
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run.system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    stop_.request(StopReason::PowerOff, "KVM system event: shutdown");
                    break;
                case KVM_SYSTEM_EVENT_RESET:
                    stop_.request(StopReason::Reboot, "KVM system event: reset");
                    break;
                default:
                    fail(StopReason::GuestFailure,
                         fmt::format("KVM system event {}", run.system_event.type));
                    break;
            }
            break;
        case KVM_EXIT_INTR:
            break;
        default:
            fail(StopReason::HostError,
                 fmt::format("unhandled KVM exit reason {}", run.exit_reason));
            break;
    }
}

}  // namespace vmm
