// MSI-X and INTx of a passthrough function over a fake device and a fake
// hypervisor: the guest's table is emulated, its routes pushed to KVM, and
// its masking mirrored into VFIO's per-vector triggers (each vector's irqfd
// eventfd, or none); INTx is a resample irqfd while MSI-X is off. The PBA
// is the device's own; table accesses of any size and offset are safe.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>

#include "devices/vfio/vfio_pci_device.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/vfio/fake_device_io.hpp"

namespace devices::vfio {
namespace {

using pci::testing::FakeHypervisor;
using testing::FakeDeviceIo;
using testing::kFakePbaOffset;
using testing::kFakeTableOffset;
using testing::kFakeVectors;

constexpr std::uint32_t kIntxGsi = 17;

struct MsixFixture : ::testing::Test {
    std::shared_ptr<FakeHypervisor> hypervisor = std::make_shared<FakeHypervisor>();
    std::shared_ptr<pci::MsiRouter> router = std::make_shared<pci::MsiRouter>(hypervisor);
    FakeDeviceIo* fake = nullptr;
    std::unique_ptr<VfioPciDevice> device;

    void SetUp() override {
        auto io = std::make_unique<FakeDeviceIo>();
        fake = io.get();
        device = std::make_unique<VfioPciDevice>(std::move(io), router, 4096);
        device->attached(1, kIntxGsi);
    }

    void control(std::uint16_t value) {
        std::array<std::uint8_t, 2> bytes{static_cast<std::uint8_t>(value),
                                          static_cast<std::uint8_t>(value >> 8)};
        device->config_write(0x82, bytes);
    }
    void table_dword(std::uint16_t vector, unsigned word, std::uint32_t value) {
        std::array<std::uint8_t, 4> bytes{};
        std::memcpy(bytes.data(), &value, 4);
        device->bar_write(0, kFakeTableOffset + vector * 16u + word * 4, bytes);
    }
    void program(std::uint16_t vector, std::uint64_t address, std::uint32_t data, bool masked) {
        table_dword(vector, 0, static_cast<std::uint32_t>(address));
        table_dword(vector, 1, static_cast<std::uint32_t>(address >> 32));
        table_dword(vector, 2, data);
        table_dword(vector, 3, masked ? 1 : 0);
    }
    std::uint32_t table_read32(std::uint64_t offset) {
        std::array<std::uint8_t, 4> bytes{};
        device->bar_read(0, kFakeTableOffset + offset, bytes);
        std::uint32_t value;
        std::memcpy(&value, bytes.data(), 4);
        return value;
    }
    int vector_fd(std::uint16_t vector) {
        return device->interrupts().msix()->vector_eventfd(vector);
    }
    const std::vector<int>& triggers() { return device->interrupts().vfio_triggers(); }
    std::vector<FakeDeviceIo::IrqCall> msix_calls() { return fake->calls_for(kMsixIrq); }
};

TEST_F(MsixFixture, EveryVectorHasItsOwnIrqfdFromTheStart) {
    // One irqfd per MSI-X vector, plus INTx's resample irqfd.
    EXPECT_EQ(hypervisor->irqfds.size(), kFakeVectors + 1u);
    EXPECT_TRUE(msix_calls().empty());
}

TEST_F(MsixFixture, IntxIsAResampleIrqfdWhileMsixIsOff) {
    ASSERT_TRUE(device->interrupts().intx_routed());
    const auto intx = fake->calls_for(kIntxIrq);
    ASSERT_EQ(intx.size(), 1u);
    ASSERT_EQ(intx[0].fds.size(), 1u);
    const int trigger = intx[0].fds[0];
    const auto resample = hypervisor->resample_fds.find({trigger, kIntxGsi});
    ASSERT_NE(resample, hypervisor->resample_fds.end());
    EXPECT_EQ(resample->second, fake->unmask_fd);
    EXPECT_GE(fake->unmask_fd, 0);
}

TEST_F(MsixFixture, EnablingMsixDropsIntxAndEnablesEveryVectorMasked) {
    const int intx_trigger = fake->calls_for(kIntxIrq).at(0).fds.at(0);
    control(0xc000);  // Enable + Function Mask, as Linux starts
    EXPECT_FALSE(device->interrupts().intx_routed());
    EXPECT_FALSE(hypervisor->irqfds.count({intx_trigger, kIntxGsi}));
    EXPECT_TRUE(fake->calls_for(kIntxIrq).back().disable);
    const auto calls = msix_calls();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].start, 0u);
    ASSERT_EQ(calls[0].fds.size(), kFakeVectors);
    for (int fd : calls[0].fds) EXPECT_EQ(fd, -1);  // masked: the device holds them pending
}

TEST_F(MsixFixture, AnUnmaskedVectorTriggersItsIrqfdWithTheGuestsRoute) {
    control(0xc000);
    program(3, 0xfee0'2000, 0x4023, false);
    EXPECT_EQ(msix_calls().size(), 1u);  // function still masked: nothing changes
    control(0x8000);
    const auto calls = msix_calls();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[1].start, 3u);
    EXPECT_EQ(calls[1].fds, std::vector<int>{vector_fd(3)});
    // KVM has the route before VFIO can signal the eventfd.
    const auto gsi_of = [&](int fd) {
        for (const auto& [eventfd, gsi] : hypervisor->irqfds) {
            if (eventfd == fd) return gsi;
        }
        return 0u;
    };
    const auto* route = hypervisor->msi_route(gsi_of(vector_fd(3)));
    ASSERT_NE(route, nullptr);
    EXPECT_EQ(route->u.msi.address_lo, 0xfee0'2000u);
    EXPECT_EQ(route->u.msi.data, 0x4023u);
}

TEST_F(MsixFixture, MaskingAVectorTakesItsTriggerAway) {
    control(0x8000);
    program(0, 0xfee0'0000, 0x4021, false);
    program(1, 0xfee0'1000, 0x4022, false);
    EXPECT_EQ(triggers()[0], vector_fd(0));
    EXPECT_EQ(triggers()[1], vector_fd(1));
    table_dword(0, 3, 1);
    EXPECT_EQ(triggers()[0], -1);
    EXPECT_EQ(triggers()[1], vector_fd(1));
    const auto last = msix_calls().back();
    EXPECT_EQ(last.start, 0u);
    EXPECT_EQ(last.fds, std::vector<int>{-1});
}

TEST_F(MsixFixture, FunctionMaskTakesEveryTriggerAwayInOneCall) {
    control(0x8000);
    for (std::uint16_t v = 0; v < 4; ++v) program(v, 0xfee0'0000, 0x4020 + v, false);
    const auto before = msix_calls().size();
    control(0xc000);
    const auto calls = msix_calls();
    ASSERT_EQ(calls.size(), before + 1);
    EXPECT_EQ(calls.back().start, 0u);
    EXPECT_EQ(calls.back().fds, std::vector<int>(4, -1));
    control(0x8000);
    EXPECT_EQ(msix_calls().back().fds,
              (std::vector<int>{vector_fd(0), vector_fd(1), vector_fd(2), vector_fd(3)}));
}

TEST_F(MsixFixture, RewritingAnUnmaskedEntryMovesOnlyTheRoute) {
    control(0x8000);
    program(2, 0xfee0'0000, 0x4021, false);
    const auto calls = msix_calls().size();
    const auto updates = hypervisor->routing_updates;
    table_dword(2, 2, 0x4031);  // Linux retargets unmasked entries in place
    EXPECT_EQ(msix_calls().size(), calls);
    EXPECT_GT(hypervisor->routing_updates, updates);
}

TEST_F(MsixFixture, DisablingMsixBringsIntxBack) {
    control(0x8000);
    program(0, 0xfee0'0000, 0x4021, false);
    control(0x0000);
    EXPECT_TRUE(msix_calls().back().disable);
    EXPECT_FALSE(device->interrupts().msix_on_in_vfio());
    EXPECT_TRUE(device->interrupts().intx_routed());
    // And MSI-X again: every vector at once, the still unmasked one triggered.
    control(0x8000);
    const auto last = msix_calls().back();
    ASSERT_EQ(last.fds.size(), kFakeVectors);
    EXPECT_EQ(last.fds[0], vector_fd(0));
}

TEST_F(MsixFixture, TableReadsBackWhatTheGuestWrote) {
    program(5, 0x1'fee0'3000, 0x4055, true);
    EXPECT_EQ(table_read32(5 * 16 + 0), 0xfee0'3000u);
    EXPECT_EQ(table_read32(5 * 16 + 4), 0x1u);
    EXPECT_EQ(table_read32(5 * 16 + 8), 0x4055u);
    EXPECT_EQ(table_read32(5 * 16 + 12), 0x1u);
    std::array<std::uint8_t, 8> qword{};
    device->bar_read(0, kFakeTableOffset + 5 * 16, qword);
    std::uint64_t address;
    std::memcpy(&address, qword.data(), 8);
    EXPECT_EQ(address, 0x1'fee0'3000u);
    // The device's real table is never written.
    for (const auto& write : fake->bar_writes) {
        EXPECT_FALSE(write.offset + write.size > kFakeTableOffset &&
                     write.offset < kFakeTableOffset + kFakeVectors * 16u);
    }
}

TEST_F(MsixFixture, PbaIsTheDevicesOwnAndReadOnly) {
    const std::array<std::uint8_t, 8> pending{0x05, 0, 0, 0, 0, 0, 0, 0x80};
    fake->set_bar_bytes(0, kFakePbaOffset, pending);
    std::array<std::uint8_t, 8> read{};
    device->bar_read(0, kFakePbaOffset, read);
    EXPECT_EQ(read, pending);
    const std::array<std::uint8_t, 8> junk{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    device->bar_write(0, kFakePbaOffset, junk);
    EXPECT_EQ(fake->bar_bytes(0, kFakePbaOffset, 8),
              std::vector<std::uint8_t>(pending.begin(), pending.end()));
}

TEST_F(MsixFixture, VfioRefusingTriggersIsLoggedAndRetried) {
    fake->fail_irqs = true;
    EXPECT_NO_THROW(control(0x8000));
    EXPECT_FALSE(device->interrupts().msix_on_in_vfio());
    fake->fail_irqs = false;
    program(0, 0xfee0'0000, 0x4021, false);
    EXPECT_TRUE(device->interrupts().msix_on_in_vfio());
    EXPECT_EQ(triggers()[0], vector_fd(0));
}

TEST_F(MsixFixture, KvmRefusingARouteDoesNotThrow) {
    control(0x8000);
    hypervisor->fail_routing = true;
    EXPECT_NO_THROW(program(0, 0xdead'0000, 0x1, false));
    hypervisor->fail_routing = false;
}

// Table and PBA accesses of every size at every offset around them, and
// random control writes: no throw, the device's table untouched.
TEST_F(MsixFixture, HostileTableAndPbaAccesses) {
    std::mt19937 random(7);
    for (int i = 0; i < 20000; ++i) {
        const std::uint64_t offset = kFakeTableOffset - 16 + random() % (0x2000 + 32);
        std::vector<std::uint8_t> bytes(1 + random() % 8);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
        switch (random() % 3) {
            case 0:
                EXPECT_NO_THROW(device->bar_write(0, offset, bytes));
                break;
            case 1:
                EXPECT_NO_THROW(device->bar_read(0, offset, bytes));
                break;
            default:
                EXPECT_NO_THROW(control(static_cast<std::uint16_t>(random())));
                break;
        }
    }
    std::size_t writes_beside = 0;
    for (const auto& write : fake->bar_writes) {
        EXPECT_FALSE(write.offset + write.size > kFakeTableOffset &&
                     write.offset < kFakeTableOffset + kFakeVectors * 16u)
            << std::hex << write.offset << "+" << write.size;
        EXPECT_FALSE(write.offset + write.size > kFakePbaOffset &&
                     write.offset < kFakePbaOffset + 16)
            << std::hex << write.offset << "+" << write.size;
        ++writes_beside;
    }
    EXPECT_GT(writes_beside, 0u);  // the registers around them did get writes
    // The VFIO state is whatever the last control and table say.
    control(0x0000);
    EXPECT_TRUE(device->interrupts().intx_routed());
}

TEST_F(MsixFixture, TeardownTurnsEveryInterruptOffResetsThenCloses) {
    control(0x8000);
    program(0, 0xfee0'0000, 0x4021, false);
    EXPECT_EQ(fake->resets, 1);  // at start
    // While MSI-X is on, INTx's irqfd is gone.
    EXPECT_EQ(hypervisor->irqfds.size(), kFakeVectors + 0u);
    const auto journal = fake->journal;
    const std::size_t before = journal->size();
    device.reset();
    const std::vector<std::string> teardown(journal->begin() + static_cast<std::ptrdiff_t>(before),
                                            journal->end());
    EXPECT_EQ(teardown, (std::vector<std::string>{"disable 2", "reset", "closed"}));
    EXPECT_TRUE(hypervisor->irqfds.empty());
    EXPECT_EQ(router->routed_count(), 0u);
}

TEST_F(MsixFixture, TeardownWithIntxRemovesTheResampleIrqfd) {
    const auto journal = fake->journal;
    const std::size_t before = journal->size();
    device.reset();
    const std::vector<std::string> teardown(journal->begin() + static_cast<std::ptrdiff_t>(before),
                                            journal->end());
    EXPECT_EQ(teardown, (std::vector<std::string>{"disable 0", "reset", "closed"}));
    EXPECT_TRUE(hypervisor->irqfds.empty());
    EXPECT_TRUE(hypervisor->resample_fds.empty());
}

}  // namespace
}  // namespace devices::vfio
