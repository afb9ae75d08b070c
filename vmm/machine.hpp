// One VM assembled from a MachineConfig: guest RAM, the KVM VM and its
// vCPUs, legacy devices, ACPI tables and the loaded kernel. run() drives it
// to the end and returns the process exit code.
#pragma once

#include <memory>
#include <vector>

#include "devices/legacy/serial_16550.hpp"
#include "devices/pci/pci_platform.hpp"
#include "vmm/boot/boot_entry.hpp"
#include "vmm/bus.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/kvm/kvm_system.hpp"
#include "vmm/kvm/kvm_vm.hpp"
#include "vmm/machine_config.hpp"
#include "vmm/serial_output.hpp"
#include "vmm/stop_controller.hpp"
#include "vmm/vcpu_runner.hpp"

namespace vmm {

// Exit codes of `vmm run`.
inline constexpr int kExitGuestStopped = 0;  // guest powered off or rebooted
inline constexpr int kExitHostError = 1;
inline constexpr int kExitGuestFailure = 2;  // triple fault, internal error
inline constexpr int kExitSignalBase = 128;  // + signal number

class Machine {
  public:
    // Validates inputs and builds everything; no vCPU runs yet. Throws
    // base::Error with the reason (bad kernel file, KVM missing, ...).
    explicit Machine(MachineConfig config);
    ~Machine();

    // Starts the vCPUs and runs the event loop until the VM stops. However it
    // leaves, by an exception too, every vCPU has stopped and been joined.
    int run();

  private:
    // Reads and validates the kernel/initrd and writes them, the ACPI tables
    // and the boot data into guest memory: all user-input errors surface
    // here, before KVM is touched.
    static boot::BootEntry load_guest(const MachineConfig& config, GuestMemory& memory);
    void create_devices();
    void create_vcpus();
    // Requests a stop (if none was), kicks every vCPU until it has left its
    // loop, and joins them all.
    void stop_vcpus() noexcept;
    int exit_code_for(const StopController::Outcome& outcome) const;

    // In construction order: user input (kernel, initrd, the serial sink)
    // is checked before KVM is opened.
    MachineConfig config_;
    StopController stop_;
    GuestMemory memory_;
    boot::BootEntry boot_entry_;
    SerialOutput serial_output_;
    kvm::KvmSystem kvm_;
    kvm::KvmVm vm_;
    Bus pio_bus_{"port I/O"};
    Bus mmio_bus_{"MMIO"};
    std::shared_ptr<devices::Serial16550> serial_;
    std::unique_ptr<devices::pci::PciPlatform> pci_;  // PCI bus + virtio devices
    std::vector<std::unique_ptr<VcpuRunner>> vcpus_;
    int stop_signal_ = 0;
};

}  // namespace vmm
