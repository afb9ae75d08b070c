// The virtio-pci modern transport (virtio 1.2, 4.1; no legacy interface):
// a PciDevice that exposes a VirtioDevice through the common, notify, ISR,
// device and PCI-config capabilities, with MSI-X vectors per queue.
//
// BAR 0 (64-bit, 16 KiB):   0x0000 common config   0x1000 ISR
//                           0x2000 device config   0x3000 notify (4 bytes/queue)
// BAR 2 (32-bit, 4 KiB):    0x0000 MSI-X table     0x0800 PBA
//
// Threads: vCPUs enter through config/BAR accesses (serialized by one
// mutex); the device runs on its DeviceWorker, which reaches back only
// through atomics, the MSI-X object and the INTx lock (a leaf lock), never
// this object's mutex, so a reset can join the worker while holding it.
//
// Device status (2.1): bits only accumulate until the driver writes 0. A
// write that clears a bit is a driver error: ignored, the device fails
// (NEEDS_RESET). The worker exists from DRIVER_OK (with Bus Master Enable)
// until reset or failure, and there is never more than one.
//
// PCI command register: with Bus Master Enable off the device neither
// touches guest memory nor sends MSI-X messages (they stay pending): the
// worker starts only once both DRIVER_OK and BME are set, and clearing BME
// while it runs stops it and fails the device, as a driver resets it after
// that anyway. INTx Disable holds the INTx line low; Status.Interrupt shows
// a pending INTx (ISR non-zero) either way.
//
// Offloaded queues (VirtioDevice::queue_offloaded, run by vhost): at
// DRIVER_OK the device gets each one's kick eventfd (the KVM ioeventfd) and
// a call eventfd. With MSI-X enabled and a vector set, the call eventfd is
// the vector's own irqfd, so the kernel interrupts the guest without us;
// the vector is then routed eagerly (Msix::share_eventfd). Otherwise (INTx,
// NO_VECTOR) it is a relay eventfd that the worker turns into
// interrupt_queue(), which also follows later vector changes. A driver that
// changes a shared vector or disables MSI-X while such a queue runs fails
// the device: it is stopped at once (the kernel would go on signalling a
// vector nobody routes) and reports NEEDS_RESET.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/log_limit.hpp"
#include "devices/pci/msi_router.hpp"
#include "devices/pci/msix.hpp"
#include "devices/pci/pci_config_space.hpp"
#include "devices/pci/pci_device.hpp"
#include "devices/virtio/device_worker.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

class VirtioPciDevice : public pci::PciDevice {
  public:
    static constexpr std::uint8_t kBarRegisters = 0;
    static constexpr std::uint64_t kBarRegistersSize = 0x4000;
    static constexpr std::uint64_t kCommonOffset = 0x0000;
    static constexpr std::uint64_t kCommonSize = 0x40;
    static constexpr std::uint64_t kIsrOffset = 0x1000;
    static constexpr std::uint64_t kDeviceConfigOffset = 0x2000;
    static constexpr std::uint64_t kDeviceConfigMax = 0x1000;
    static constexpr std::uint64_t kNotifyOffset = 0x3000;
    static constexpr std::uint32_t kNotifyMultiplier = 4;
    static constexpr std::uint8_t kBarMsix = 2;
    static constexpr std::uint64_t kBarMsixSize = 0x1000;
    static constexpr std::uint32_t kMsixPbaOffset = 0x800;
    static constexpr std::uint16_t kMaxQueues = 64;

    // `router` null: no KVM (unit tests); vectors then only signal eventfds
    // and notifications arrive through BAR writes. Throws base::Error.
    VirtioPciDevice(std::unique_ptr<VirtioDevice> device, const vmm::GuestMemory& memory,
                    std::shared_ptr<pci::MsiRouter> router);
    ~VirtioPciDevice() override;

    std::string name() const override { return name_; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override;
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override;
    std::vector<pci::BarInfo> bars() const override;
    void bar_read(std::uint8_t index, std::uint64_t offset, std::span<std::uint8_t> data) override;
    void bar_write(std::uint8_t index, std::uint64_t offset,
                   std::span<const std::uint8_t> data) override;
    void attached(std::uint8_t slot, std::uint32_t intx_gsi) override;
    void bar_moved(std::uint8_t index, std::optional<std::uint64_t> old_address,
                   std::optional<std::uint64_t> new_address) override;

    // For tests and diagnostics.
    std::uint8_t status() const { return status_.load(); }
    // Whether a worker runs the device (it may touch guest memory).
    bool active() const {
        std::lock_guard lock(mutex_);
        return worker_ != nullptr;
    }
    const pci::Msix& msix() const { return *msix_; }
    int kick_fd(std::uint16_t queue) const { return kick_fds_.at(queue).get(); }
    std::uint64_t offered_features() const { return offered_features_; }

  private:
    struct QueueRegisters {
        std::uint16_t size = 0;
        bool enabled = false;
        std::uint64_t desc = 0;
        std::uint64_t driver = 0;
        std::uint64_t device = 0;
    };

    void config_read_locked(std::uint16_t offset, std::span<std::uint8_t> data);
    void bar_read_locked(std::uint8_t index, std::uint64_t offset, std::span<std::uint8_t> data);
    void bar_write_locked(std::uint8_t index, std::uint64_t offset,
                          std::span<const std::uint8_t> data);
    void pci_cfg_window_access(bool is_write, std::span<std::uint8_t> data);
    std::uint64_t common_read_field(std::uint16_t field);
    void common_write_field(std::uint16_t field, std::uint64_t value);
    void common_read(std::uint64_t offset, std::span<std::uint8_t> data);
    void common_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void write_status(std::uint8_t value);
    void command_written_locked();
    void maybe_activate_locked();
    void activate_locked();
    int offloaded_call_fd_locked(std::uint16_t queue,
                                 std::vector<DeviceWorker::InterruptRelay>& relays);
    bool shares_vectors_locked() const;
    void unshare_vectors_locked();
    // Stops the worker (and whatever runs offloaded queues) and fails the device.
    void fail_locked(const std::string& why);
    // Runs an MSI-X call that may fire pending vectors; a refused route
    // fails this device.
    template <typename Fn>
    void msix_locked(Fn&& fn);
    void reset_locked();
    void register_ioeventfds(std::uint64_t bar_address, bool assign);

    // Called from the worker thread (and from vCPUs, for device_failed()).
    void interrupt_queue(std::uint16_t queue);
    void interrupt_config();
    void device_failed(const std::string& why);
    void raise_intx(std::uint8_t isr_bits);
    // With intx_mutex_ held: the line follows the ISR and INTx Disable.
    void update_intx_locked();

    std::unique_ptr<VirtioDevice> device_;
    const vmm::GuestMemory& memory_;
    std::shared_ptr<pci::MsiRouter> router_;
    pci::Hypervisor* hypervisor_;
    std::string name_;
    std::uint16_t queue_count_;
    std::uint64_t offered_features_;

    mutable std::mutex mutex_;
    pci::PciConfigSpace config_;
    std::unique_ptr<pci::Msix> msix_;
    std::uint16_t pci_cfg_cap_ = 0;
    std::optional<std::uint64_t> registers_address_;
    std::optional<std::uint32_t> intx_gsi_;
    bool bus_master_ = false;  // the command register's BME, as last written

    std::uint32_t device_feature_select_ = 0;
    std::uint32_t driver_feature_select_ = 0;
    std::uint64_t driver_features_ = 0;
    std::uint16_t queue_select_ = 0;
    std::uint8_t config_generation_ = 0;
    std::vector<QueueRegisters> queues_;
    std::vector<base::UniqueFd> kick_fds_;
    // Per offloaded queue: the eventfd the kernel writes when no MSI-X
    // vector of ours can take its interrupts directly.
    std::vector<base::UniqueFd> call_relays_;
    // Per queue: the MSI-X vector whose eventfd the kernel writes directly
    // since DRIVER_OK, or kMsiNoVector.
    std::vector<std::uint16_t> shared_vectors_;
    std::unique_ptr<DeviceWorker> worker_;

    // Shared with the worker thread.
    std::atomic<std::uint8_t> status_{0};
    std::atomic<std::uint8_t> isr_{0};  // written under intx_mutex_
    std::mutex intx_mutex_;
    bool intx_disabled_ = false;  // command register, INTx Disable
    bool intx_line_ = false;      // the level last given to the hypervisor
    LogLimit refusals_;           // FEATURES_OK refused
    LogLimit failures_;           // NEEDS_RESET
    std::atomic<std::uint16_t> config_vector_{kMsiNoVector};
    std::unique_ptr<std::atomic<std::uint16_t>[]> queue_vectors_;
};

}  // namespace devices::virtio
