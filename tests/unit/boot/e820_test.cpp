#include "vmm/boot/e820.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::boot {
namespace {

using x86::GiB;
using x86::MiB;

constexpr E820Entry kLowRam{0, x86::kEbdaStart, E820Type::Ram};
constexpr E820Entry kLegacyArea{x86::kEbdaStart, x86::kHighMemoryStart - x86::kEbdaStart,
                                E820Type::Reserved};
constexpr E820Entry kEcam{x86::kPciEcamStart, x86::kPciEcamSize, E820Type::Reserved};
constexpr E820Entry kKvmPages{x86::kKvmIdentityMapAddress, 4 * 4096, E820Type::Reserved};

E820Entry ram(std::uint64_t start, std::uint64_t end) {
    return {start, end - start, E820Type::Ram};
}

std::vector<E820Entry> map_for(std::uint64_t ram_size) {
    return build_e820_map(GuestMemory::create_x86(ram_size));
}

void expect_sorted_and_disjoint(const std::vector<E820Entry>& map) {
    for (std::size_t i = 1; i < map.size(); ++i) {
        EXPECT_LE(map[i - 1].end(), map[i].address) << "entry " << i;
    }
}

std::uint64_t total_ram(const std::vector<E820Entry>& map) {
    std::uint64_t total = 0;
    for (const auto& entry : map) {
        if (entry.type == E820Type::Ram) total += entry.size;
    }
    return total;
}

TEST(E820, SixtyFourMiB) {
    const auto map = map_for(64 * MiB);
    const std::vector<E820Entry> expected{kLowRam, kLegacyArea, ram(1 * MiB, 64 * MiB), kEcam,
                                          kKvmPages};
    EXPECT_EQ(map, expected);
}

TEST(E820, TwoHundredFiftySixMiB) {
    const std::vector<E820Entry> expected{kLowRam, kLegacyArea, ram(1 * MiB, 256 * MiB), kEcam,
                                          kKvmPages};
    EXPECT_EQ(map_for(256 * MiB), expected);
}

TEST(E820, ThreeGiBFillsLowMemoryExactly) {
    const std::vector<E820Entry> expected{kLowRam, kLegacyArea, ram(1 * MiB, x86::kLowMemoryLimit),
                                          kEcam, kKvmPages};
    EXPECT_EQ(map_for(3 * GiB), expected);
}

TEST(E820, ThreeAndAHalfGiBMovesTheRestAboveFourGiB) {
    const std::vector<E820Entry> expected{kLowRam, kLegacyArea, ram(1 * MiB, x86::kLowMemoryLimit),
                                          kEcam,   kKvmPages,   ram(4 * GiB, 4 * GiB + GiB / 2)};
    EXPECT_EQ(map_for(3 * GiB + GiB / 2), expected);
}

TEST(E820, FourGiB) {
    const std::vector<E820Entry> expected{kLowRam, kLegacyArea, ram(1 * MiB, 3 * GiB),
                                          kEcam,   kKvmPages,   ram(4 * GiB, 5 * GiB)};
    EXPECT_EQ(map_for(4 * GiB), expected);
}

TEST(E820, SixteenGiB) {
    const auto map = map_for(16 * GiB);
    ASSERT_EQ(map.size(), 6u);
    EXPECT_EQ(map.back(), ram(4 * GiB, 17 * GiB));
    // All RAM but the legacy area is usable.
    EXPECT_EQ(total_ram(map), 16 * GiB - (x86::kHighMemoryStart - x86::kEbdaStart));
    expect_sorted_and_disjoint(map);
}

// The largest guest (x86::kMaxRamSize): RAM ends right below the 64-bit
// PCI window.
TEST(E820, LargestGuest) {
    const auto map = map_for(vmm::x86::kMaxRamSize);
    ASSERT_EQ(map.size(), 6u);
    EXPECT_EQ(map.back(), ram(4 * GiB, vmm::x86::kPciMmio64Start));
    expect_sorted_and_disjoint(map);
}

TEST(E820, EveryRamEntryIsGuestRam) {
    for (const std::uint64_t size : {64 * MiB, 3 * GiB, 5 * GiB}) {
        const auto memory = GuestMemory::create_x86(size);
        for (const auto& entry : build_e820_map(memory)) {
            if (entry.type == E820Type::Ram) {
                EXPECT_TRUE(memory.contains(entry.address, entry.size))
                    << std::hex << entry.address;
            }
        }
    }
}

TEST(E820, EcamWindowIsReservedForMcfg) {
    const auto map = map_for(512 * MiB);
    EXPECT_NE(std::find(map.begin(), map.end(), kEcam), map.end());
}

TEST(E820, Pci32BitWindowStaysAGap) {
    // Linux allocates BARs from gaps; the window must not be RAM or reserved.
    for (const auto& entry : map_for(8 * GiB)) {
        EXPECT_FALSE(entry.address < x86::kPciMmio32End && x86::kPciMmio32Start < entry.end())
            << std::hex << entry.address;
    }
}

TEST(E820, RejectsRamThatDoesNotStartAtZero) {
    const std::pair<GuestAddress, std::uint64_t> ranges[] = {{2 * MiB, 64 * MiB}};
    EXPECT_THROW(build_e820_map(GuestMemory::create(ranges)), base::Error);
}

TEST(E820, RejectsRamInTheMmioHole) {
    const std::pair<GuestAddress, std::uint64_t> ranges[] = {{0, 64 * MiB},
                                                             {x86::kPciEcamStart, 2 * MiB}};
    EXPECT_THROW(build_e820_map(GuestMemory::create(ranges)), base::Error);
}

TEST(E820, LowRamEnd) {
    EXPECT_EQ(low_ram_end(GuestMemory::create_x86(64 * MiB)), 64 * MiB);
    EXPECT_EQ(low_ram_end(GuestMemory::create_x86(8 * GiB)), x86::kLowMemoryLimit);
}

}  // namespace
}  // namespace vmm::boot
