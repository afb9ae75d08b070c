// Unclaimed port and MMIO accesses, and COM1's interrupt through both
// in-kernel interrupt controllers. Needs /dev/kvm (skipped without it).
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.hpp"

namespace vmm::test {
namespace {

class Io : public KvmTest {};

TEST_F(Io, UnclaimedPortsAndMmioReadAllOnesAndIgnoreWrites) {
    const auto result = run_vmm(run_args("io"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(lines_starting_with(result.out, "io FAIL").empty()) << result.describe();
    EXPECT_TRUE(has_line(result.out, "io: mmio d0000000")) << result.describe();
    EXPECT_TRUE(has_line(result.out, "io: mmio 04200000 (above RAM)"))
        << "with 64M the probe above RAM must run\n"
        << result.describe();
    EXPECT_TRUE(has_line(result.out, "io ok")) << result.describe();
}

TEST_F(Io, SerialInterruptArrivesThroughTheIoapicAndThePic) {
    const auto result = run_vmm(run_args("serial_irq"));
    EXPECT_EQ(result.exit_code(), 0) << result.describe();
    EXPECT_TRUE(has_line(result.out, "serial-irq: ioapic pins 24")) << result.describe();
    EXPECT_TRUE(has_line(result.out, "serial irq via ioapic ok")) << result.describe();
    EXPECT_TRUE(has_line(result.out, "serial irq via pic ok")) << result.describe();
}

}  // namespace
}  // namespace vmm::test
