// A Hypervisor that records what devices ask of KVM, for unit tests; set
// `fail_routing` to make KVM_SET_GSI_ROUTING fail as KVM does with EINVAL,
// `fail_memory_slots` to make KVM_SET_USER_MEMORY_REGION fail with EEXIST
// (a range over RAM). Memory slots that overlap each other are refused
// like KVM does.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <vector>

#include "base/error.hpp"
#include "devices/pci/hypervisor.hpp"

namespace devices::pci::testing {

class FakeHypervisor : public Hypervisor {
  public:
    void set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) override {
        std::lock_guard lock(mutex);
        if (fail_routing) throw base::SystemError(EINVAL, "KVM_SET_GSI_ROUTING");
        routing = entries;
        ++routing_updates;
    }
    void assign_irqfd(int eventfd, std::uint32_t gsi) override {
        std::lock_guard lock(mutex);
        irqfds.insert({eventfd, gsi});
    }
    void deassign_irqfd(int eventfd, std::uint32_t gsi) override {
        std::lock_guard lock(mutex);
        irqfds.erase({eventfd, gsi});
        resample_fds.erase({eventfd, gsi});
    }
    void assign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) override {
        std::lock_guard lock(mutex);
        ioeventfds.insert({eventfd, address, length});
    }
    void deassign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) override {
        std::lock_guard lock(mutex);
        ioeventfds.erase({eventfd, address, length});
    }
    void assign_resample_irqfd(int eventfd, int resample_fd, std::uint32_t gsi) override {
        std::lock_guard lock(mutex);
        irqfds.insert({eventfd, gsi});
        resample_fds[{eventfd, gsi}] = resample_fd;
    }
    void set_irq_line(std::uint32_t gsi, bool level) override {
        std::lock_guard lock(mutex);
        lines.emplace_back(gsi, level);
    }
    std::uint32_t add_memory_slot(std::uint64_t gpa, std::span<std::uint8_t> host,
                                  bool read_only) override {
        std::lock_guard lock(mutex);
        if (fail_memory_slots) throw base::SystemError(EEXIST, "KVM_SET_USER_MEMORY_REGION");
        for (const auto& [number, slot] : memory_slots) {
            if (gpa < slot.gpa + slot.host.size() && slot.gpa < gpa + host.size()) {
                throw base::SystemError(EEXIST, "KVM_SET_USER_MEMORY_REGION");
            }
        }
        const std::uint32_t number = next_slot++;
        memory_slots[number] = MemorySlot{gpa, host, read_only};
        return number;
    }
    void remove_memory_slot(std::uint32_t slot) override {
        std::lock_guard lock(mutex);
        memory_slots.erase(slot);
    }

    // The MSI route of `gsi`, if the last routing table has one.
    const kvm_irq_routing_entry* msi_route(std::uint32_t gsi) const {
        for (const auto& entry : routing) {
            if (entry.gsi == gsi && entry.type == KVM_IRQ_ROUTING_MSI) return &entry;
        }
        return nullptr;
    }

    struct MemorySlot {
        std::uint64_t gpa = 0;
        std::span<std::uint8_t> host;
        bool read_only = false;
    };

    std::mutex mutex;
    std::vector<kvm_irq_routing_entry> routing;
    int routing_updates = 0;
    bool fail_routing = false;
    std::set<std::pair<int, std::uint32_t>> irqfds;
    std::set<std::tuple<int, std::uint64_t, std::uint32_t>> ioeventfds;
    std::vector<std::pair<std::uint32_t, bool>> lines;
    std::map<std::pair<int, std::uint32_t>, int> resample_fds;  // (eventfd, gsi) -> resample fd
    bool fail_memory_slots = false;
    std::uint32_t next_slot = 100;
    std::map<std::uint32_t, MemorySlot> memory_slots;
};

}  // namespace devices::pci::testing
