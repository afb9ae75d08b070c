// One vCPU thread: runs KVM_RUN and dispatches exits to the port-I/O and
// MMIO buses until the StopController says stop or kick() is called. kick()
// is immediate_exit + a signal, so a vCPU about to enter the guest and one
// inside it both return; the signal also interrupts a host call the thread
// is blocked in (a serial write to a full pipe).
#pragma once

#include <pthread.h>

#include <atomic>
#include <thread>

#include "base/unique_fd.hpp"
#include "vmm/bus.hpp"
#include "vmm/kvm/kvm_vcpu.hpp"
#include "vmm/stop_controller.hpp"

namespace vmm {

class VcpuRunner {
  public:
    VcpuRunner(kvm::KvmVcpu vcpu, const Bus& pio_bus, const Bus& mmio_bus, StopController& stop);
    ~VcpuRunner();
    VcpuRunner(const VcpuRunner&) = delete;
    VcpuRunner& operator=(const VcpuRunner&) = delete;

    kvm::KvmVcpu& vcpu() { return vcpu_; }

    // Installs the process-wide kick signal handler; call once before start().
    static void install_kick_handler();
    // The signal kick() sends (a real-time one, SIGRTMIN).
    static int kick_signal();
    // Throws base::SystemError when the thread cannot be created.
    void start();
    // Makes the thread leave its loop, whether or not a stop was requested.
    // Repeat until exited(): a signal that lands just before the thread
    // blocks in a host call (not KVM_RUN: immediate_exit covers that) is lost.
    void kick();
    // True once the thread has left its loop, or when it never started.
    bool exited() const;
    // Readable once the thread has left its loop (never drained).
    int exited_fd() const { return exited_fd_.get(); }
    void join();

  private:
    void thread_main();
    void handle_exit();
    void handle_io(const kvm_run& run);
    void handle_mmio(kvm_run& run);
    void fail(StopReason reason, const std::string& what);
    void note_unclaimed(const char* kind, std::uint64_t address, bool is_write);

    kvm::KvmVcpu vcpu_;
    const Bus& pio_bus_;
    const Bus& mmio_bus_;
    StopController& stop_;
    std::thread thread_;
    std::atomic<bool> started_{false};
    std::atomic<bool> exit_requested_{false};
    std::atomic<bool> exited_{false};
    base::UniqueFd exited_fd_;
    std::uint64_t unclaimed_accesses_ = 0;
};

}  // namespace vmm
