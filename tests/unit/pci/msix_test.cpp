#include "devices/pci/msix.hpp"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "base/error.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"

namespace devices::pci {
namespace {

using testing::FakeHypervisor;

std::uint64_t drain(int fd) {
    std::uint64_t count = 0;
    if (::read(fd, &count, sizeof(count)) != sizeof(count)) return 0;
    return count;
}

void write_entry(Msix& msix, std::uint16_t vector, std::uint64_t address, std::uint32_t data,
                 bool masked) {
    std::array<std::uint32_t, 4> words{static_cast<std::uint32_t>(address),
                                       static_cast<std::uint32_t>(address >> 32), data,
                                       masked ? 1u : 0u};
    for (std::size_t i = 0; i < 4; ++i) {
        std::array<std::uint8_t, 4> bytes{};
        std::memcpy(bytes.data(), &words[i], 4);
        msix.table_write(vector * 16 + i * 4, bytes);
    }
}

struct MsixFixture : ::testing::Test {
    std::shared_ptr<FakeHypervisor> fake = std::make_shared<FakeHypervisor>();
    FakeHypervisor& hypervisor = *fake;
    std::shared_ptr<MsiRouter> router = std::make_shared<MsiRouter>(fake);
    PciConfigSpace config{PciIdentity{.vendor_id = 1, .device_id = 2}};

    void set_control(Msix& msix, std::uint16_t control) {
        std::array<std::uint8_t, 2> bytes{static_cast<std::uint8_t>(control),
                                          static_cast<std::uint8_t>(control >> 8)};
        config.write(msix.capability_offset() + 2, bytes);
        msix.control_written(config);
    }
};

TEST_F(MsixFixture, CapabilityDescribesTableAndPba) {
    Msix msix(router, 3, 2, 0, 2, 0x800);
    msix.add_capability(config);
    const auto cap = msix.capability_offset();
    EXPECT_EQ(config.read8(cap), kCapabilityMsix);
    EXPECT_EQ(config.read16(cap + 2), 2);  // table size - 1, disabled
    EXPECT_EQ(config.read32(cap + 4), 2u);
    EXPECT_EQ(config.read32(cap + 8), 0x802u);
    // Table size is read-only.
    set_control(msix, 0x07ff);
    EXPECT_EQ(config.read16(cap + 2), 2);
    EXPECT_EQ(hypervisor.irqfds.size(), 3u);
}

TEST_F(MsixFixture, DisabledMsixDoesNotDeliver) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    EXPECT_FALSE(msix.signal(0));
    EXPECT_EQ(drain(msix.vector_eventfd(0)), 0u);
}

TEST_F(MsixFixture, UnmaskedVectorFiresAndRoutes) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0x8000);
    write_entry(msix, 1, 0xfee0'1000, 0x4041, false);
    EXPECT_TRUE(msix.signal(1));
    EXPECT_EQ(drain(msix.vector_eventfd(1)), 1u);
    // The route was pushed lazily, once, with KVM's default routes kept.
    ASSERT_EQ(hypervisor.routing_updates, 1);
    std::size_t irqchip_routes = 0;
    const kvm_irq_routing_entry* msi = nullptr;
    for (const auto& entry : hypervisor.routing) {
        if (entry.type == KVM_IRQ_ROUTING_IRQCHIP) ++irqchip_routes;
        if (entry.type == KVM_IRQ_ROUTING_MSI) msi = &entry;
    }
    EXPECT_EQ(irqchip_routes, 24u + 16u);
    ASSERT_NE(msi, nullptr);
    EXPECT_EQ(msi->u.msi.address_lo, 0xfee0'1000u);
    EXPECT_EQ(msi->u.msi.data, 0x4041u);
    EXPECT_TRUE(hypervisor.irqfds.count({msix.vector_eventfd(1), msi->gsi}));
    // A second interrupt needs no new routing.
    msix.signal(1);
    EXPECT_EQ(hypervisor.routing_updates, 1);
}

TEST_F(MsixFixture, MaskedVectorSetsPendingUntilUnmasked) {
    Msix msix(router, 4, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0x8000);
    write_entry(msix, 3, 0xfee0'0000, 0x30, true);
    msix.signal(3);
    EXPECT_EQ(drain(msix.vector_eventfd(3)), 0u);
    EXPECT_TRUE(msix.pending(3));
    std::array<std::uint8_t, 8> pba{};
    msix.pba_read(0, pba);
    EXPECT_EQ(pba[0], 0x08);
    // Unmasking delivers the pending interrupt and clears the bit.
    const std::array<std::uint8_t, 4> unmask{0, 0, 0, 0};
    msix.table_write(3 * 16 + 12, unmask);
    EXPECT_EQ(drain(msix.vector_eventfd(3)), 1u);
    EXPECT_FALSE(msix.pending(3));
}

TEST_F(MsixFixture, FunctionMaskHoldsEveryVector) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0xc000);  // enabled + function masked
    write_entry(msix, 0, 0xfee0'0000, 0x31, false);
    msix.signal(0);
    EXPECT_EQ(drain(msix.vector_eventfd(0)), 0u);
    EXPECT_TRUE(msix.pending(0));
    set_control(msix, 0x8000);
    EXPECT_EQ(drain(msix.vector_eventfd(0)), 1u);
}

TEST_F(MsixFixture, GuestControlledAccessesAreBounded) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    std::array<std::uint8_t, 8> bytes{};
    bytes.fill(0xff);
    msix.table_write(~std::uint64_t{0} - 3, bytes);  // offset + size overflows
    msix.table_write(2 * 16, bytes);                 // past the table
    msix.table_read(1000, bytes);
    EXPECT_EQ(bytes[0], 0);
    msix.pba_read(~std::uint64_t{0}, bytes);
    EXPECT_EQ(bytes[0], 0);
    set_control(msix, 0x8000);
    EXPECT_TRUE(msix.signal(7));  // no such vector: ignored
    // Vector control keeps only the mask bit.
    const std::array<std::uint8_t, 4> control{0xfe, 0xff, 0xff, 0xff};
    msix.table_write(12, control);
    std::array<std::uint8_t, 4> back{};
    msix.table_read(12, back);
    EXPECT_EQ(back[0], 0);
}

TEST_F(MsixFixture, ResetMasksEverything) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0x8000);
    write_entry(msix, 0, 0xfee0'0000, 0x31, false);
    msix.reset(config);
    EXPECT_FALSE(msix.enabled());
    std::array<std::uint8_t, 4> control{};
    msix.table_read(12, control);
    EXPECT_EQ(control[0], 1);
}

TEST_F(MsixFixture, DestructionReleasesIrqfdsAndRoutes) {
    {
        Msix msix(router, 2, 2, 0, 2, 0x800);
        msix.add_capability(config);
        set_control(msix, 0x8000);
        write_entry(msix, 0, 0xfee0'0000, 0x31, false);
        msix.signal(0);
        EXPECT_EQ(router->routed_count(), 1u);
    }
    EXPECT_TRUE(hypervisor.irqfds.empty());
    EXPECT_EQ(router->routed_count(), 0u);
    EXPECT_EQ(hypervisor.msi_route(MsiRouter::kFirstMsiGsi), nullptr);
}

TEST_F(MsixFixture, BusMasterOffHoldsEveryVectorUntilOn) {
    Msix msix(router, 2, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0x8000);
    write_entry(msix, 1, 0xfee0'0000, 0x31, false);
    // An MSI-X message is a memory write: none without Bus Master Enable.
    msix.set_bus_master(false);
    EXPECT_TRUE(msix.signal(1));
    EXPECT_EQ(drain(msix.vector_eventfd(1)), 0u);
    EXPECT_TRUE(msix.pending(1));
    // Unmasking something else does not fire it either.
    set_control(msix, 0xc000);
    set_control(msix, 0x8000);
    EXPECT_EQ(drain(msix.vector_eventfd(1)), 0u);
    msix.set_bus_master(true);
    EXPECT_EQ(drain(msix.vector_eventfd(1)), 1u);
    EXPECT_FALSE(msix.pending(1));
}

TEST_F(MsixFixture, RefusedRouteOnUnmaskThrowsAfterFiringTheOthers) {
    Msix msix(router, 3, 2, 0, 2, 0x800);
    msix.add_capability(config);
    set_control(msix, 0xc000);  // enabled, function masked
    write_entry(msix, 0, 0xfee0'0000, 0x30, false);
    write_entry(msix, 2, 0xfee0'0000, 0x32, false);
    msix.signal(0);
    msix.signal(2);
    hypervisor.fail_routing = true;
    EXPECT_THROW(set_control(msix, 0x8000), MsiRouteError);
    hypervisor.fail_routing = false;
    // Both were tried (their routes stay dirty, so the next delivery
    // retries); the state the guest wrote is kept.
    EXPECT_TRUE(msix.enabled());
    EXPECT_FALSE(msix.pending(0));
    EXPECT_TRUE(msix.signal(2));
    EXPECT_EQ(drain(msix.vector_eventfd(2)), 1u);
    ASSERT_NE(hypervisor.msi_route(MsiRouter::kFirstMsiGsi + 2), nullptr);
}

TEST_F(MsixFixture, RouterKeepsThePreviousRouteWhenKvmRefusesOne) {
    const std::uint32_t good = router->allocate();
    const std::uint32_t bad = router->allocate();
    router->route(good, MsiMessage{0xfee0'0000, 0x41});
    hypervisor.fail_routing = true;
    EXPECT_THROW(router->route(bad, MsiMessage{0xfee0'0000, 0xbad}), base::Error);
    hypervisor.fail_routing = false;
    EXPECT_EQ(router->routed_count(), 1u);
    // The next update (another device's) does not carry the refused entry.
    const std::uint32_t next = router->allocate();
    router->route(next, MsiMessage{0xfee0'0000, 0x42});
    EXPECT_NE(hypervisor.msi_route(good), nullptr);
    EXPECT_NE(hypervisor.msi_route(next), nullptr);
    EXPECT_EQ(hypervisor.msi_route(bad), nullptr);
    // Releasing never throws, even when KVM refuses the shrunk table.
    hypervisor.fail_routing = true;
    EXPECT_NO_THROW(router->release(good));
    hypervisor.fail_routing = false;
}

TEST_F(MsixFixture, RejectsBadGeometry) {
    EXPECT_THROW(Msix bad(router, 0, 2, 0, 2, 0x800), base::Error);
    EXPECT_THROW(Msix bad(router, 4, 6, 0, 2, 0x800), base::Error);
    EXPECT_THROW(Msix bad(router, 4, 2, 4, 2, 0x800), base::Error);
}

}  // namespace
}  // namespace devices::pci
