// devices::I8042: only the CPU reset command (0xFE to port 0x64) does anything.
#include "devices/legacy/i8042.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "vmm/bus.hpp"
#include "vmm/x86/layout.hpp"

namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MockFunction;
using ::testing::Not;

constexpr std::uint64_t kCommand = 4;  // port 0x64 relative to 0x60

class I8042Test : public ::testing::Test {
  protected:
    void out(std::uint64_t offset, std::uint8_t value) {
        const std::array<std::uint8_t, 1> byte{value};
        device.write(offset, byte);
    }

    MockFunction<void(vmm::StopReason, std::string)> stop;
    devices::I8042 device{stop.AsStdFunction()};
};

TEST_F(I8042Test, PulseResetLineRequestsReboot) {
    EXPECT_CALL(stop, Call(vmm::StopReason::Reboot, AllOf(Not(IsEmpty()), HasSubstr("i8042"))))
        .Times(1);
    out(kCommand, 0xfe);
}

TEST_F(I8042Test, EveryOtherCommandDoesNothing) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    for (int value = 0; value < 256; ++value) {
        if (value != 0xfe) out(kCommand, static_cast<std::uint8_t>(value));
    }
}

TEST_F(I8042Test, ResetByteOnOtherPortsDoesNothing) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    for (std::uint64_t offset : {0, 1, 2, 3, 5, 0x64}) out(offset, 0xfe);
}

TEST_F(I8042Test, EmptyWriteDoesNothing) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    device.write(kCommand, std::span<const std::uint8_t>());
}

TEST_F(I8042Test, WideWriteUsesFirstByte) {
    EXPECT_CALL(stop, Call(vmm::StopReason::Reboot, _)).Times(1);
    const std::array<std::uint8_t, 4> reset{0xfe, 0, 0, 0};
    device.write(kCommand, reset);
    const std::array<std::uint8_t, 4> other{0x00, 0xfe, 0xfe, 0xfe};
    device.write(kCommand, other);
}

TEST_F(I8042Test, ReadsReturnZeroStatus) {
    EXPECT_CALL(stop, Call(_, _)).Times(0);
    for (std::uint64_t offset : {0, 4, 100}) {
        std::array<std::uint8_t, 8> data;
        data.fill(0xaa);
        device.read(offset, data);
        EXPECT_THAT(data, Each(0));  // output and input buffers empty
    }
    device.read(kCommand, std::span<std::uint8_t>());
}

TEST(I8042OnBus, RebootThroughPort0x64) {
    MockFunction<void(vmm::StopReason, std::string)> stop;
    EXPECT_CALL(stop, Call(vmm::StopReason::Reboot, _)).Times(1);
    vmm::Bus bus("pio");
    bus.insert(std::make_shared<devices::I8042>(stop.AsStdFunction()), vmm::x86::kI8042DataPort, 5);
    const std::array<std::uint8_t, 1> reset{0xfe};
    EXPECT_TRUE(bus.write(vmm::x86::kI8042DataPort, reset));  // data port: ignored
    EXPECT_TRUE(bus.write(vmm::x86::kI8042CommandPort, reset));
}

}  // namespace
