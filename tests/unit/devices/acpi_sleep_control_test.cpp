// devices::AcpiSleepControl: S5 powers off, the reset value reboots, and
// everything else (other sleep states, the status register) is ignored.
#include "devices/legacy/acpi_sleep_control.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "vmm/bus.hpp"
#include "vmm/x86/layout.hpp"

namespace {

using ::testing::_;
using ::testing::Each;
using ::testing::IsEmpty;
using ::testing::MockFunction;
using ::testing::Not;

constexpr std::uint8_t kSleepEnable = 0x20;
constexpr std::uint8_t sleep_value(std::uint8_t type) {
    return static_cast<std::uint8_t>((type << 2) | kSleepEnable);
}

class AcpiSleep : public ::testing::Test {
  protected:
    void out(std::uint64_t offset, std::uint8_t value) {
        const std::array<std::uint8_t, 1> byte{value};
        device.write(offset, byte);
    }

    MockFunction<void(vmm::StopReason, std::string)> stop;
    devices::AcpiSleepControl device{stop.AsStdFunction()};
};

TEST_F(AcpiSleep, S5PowersOff) {
    EXPECT_CALL(stop, Call(vmm::StopReason::PowerOff, Not(IsEmpty()))).Times(1);
    ASSERT_EQ(sleep_value(5), 0x34);
    out(0, 0x34);  // what Linux writes: SLP_TYP(5) << 2 | SLP_EN
}

TEST_F(AcpiSleep, ResetValueReboots) {
    EXPECT_CALL(stop, Call(vmm::StopReason::Reboot, Not(IsEmpty()))).Times(1);
    out(0, vmm::x86::kAcpiResetValue);
}

TEST_F(AcpiSleep, OtherSleepStatesAreIgnored) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    for (std::uint8_t type : {0, 1, 2, 3, 4, 6, 7}) out(0, sleep_value(type));  // S3 = 0x2c
}

TEST_F(AcpiSleep, S5WithoutSleepEnableIsIgnored) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    out(0, 0x14);
}

TEST_F(AcpiSleep, StatusRegisterWritesAreIgnored) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    out(1, 0x34);
    out(1, 0x01);
    out(2, 0x34);
    out(~std::uint64_t{0}, 0x01);
}

TEST_F(AcpiSleep, EmptyWriteIsIgnored) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    device.write(0, std::span<const std::uint8_t>());
}

// Every byte value: only 0x01 reboots, and only SLP_EN with SLP_TYP 5 (any
// reserved bits 0, 1, 6, 7) powers off.
TEST_F(AcpiSleep, ExhaustiveByteValues) {
    int power_offs = 0;
    int reboots = 0;
    EXPECT_CALL(stop, Call(_, _)).WillRepeatedly([&](vmm::StopReason reason, std::string) {
        (reason == vmm::StopReason::PowerOff ? power_offs : reboots)++;
    });
    for (int value = 0; value < 256; ++value) {
        const int before_off = power_offs;
        const int before_reboot = reboots;
        out(0, static_cast<std::uint8_t>(value));
        EXPECT_EQ(power_offs - before_off, (value & 0x3c) == 0x34 ? 1 : 0) << value;
        EXPECT_EQ(reboots - before_reboot, value == 0x01 ? 1 : 0) << value;
    }
    EXPECT_EQ(power_offs, 16);
    EXPECT_EQ(reboots, 1);
}

TEST_F(AcpiSleep, ReadsReturnZero) {
    for (std::uint64_t offset : {0, 1}) {
        std::array<std::uint8_t, 2> data{0xff, 0xff};
        device.read(offset, data);
        EXPECT_THAT(data, Each(0));  // not sleeping, no wake event
    }
}

TEST(AcpiSleepOnBus, PowerOffThroughPort0x600) {
    MockFunction<void(vmm::StopReason, std::string)> stop;
    EXPECT_CALL(stop, Call(vmm::StopReason::PowerOff, _)).Times(1);
    vmm::Bus bus("pio");
    bus.insert(std::make_shared<devices::AcpiSleepControl>(stop.AsStdFunction()),
               vmm::x86::kAcpiSleepControlPort, 2);
    const std::array<std::uint8_t, 1> s5{0x34};
    EXPECT_TRUE(bus.write(vmm::x86::kAcpiSleepStatusPort, s5));  // status: ignored
    EXPECT_TRUE(bus.write(vmm::x86::kAcpiSleepControlPort, s5));
}

}  // namespace
