// GuestRamMapper's planning and validation: pure, no IOAS needed.
#include <gtest/gtest.h>

#include "iommufd_backend/guest_ram_mapper.hpp"

namespace iommufd_backend {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kGiB = 1ull << 30;

GuestRamRegion region(std::uint64_t gpa, std::uint64_t size, std::uint64_t offset) {
    GuestRamRegion r;
    r.gpa = gpa;
    r.size = size;
    r.memfd = 5;
    r.memfd_offset = offset;
    return r;
}

std::map<std::uint64_t, GuestRamRegion> as_map(std::initializer_list<GuestRamRegion> regions) {
    std::map<std::uint64_t, GuestRamRegion> result;
    for (const auto& r : regions) result[r.gpa] = r;
    return result;
}

TEST(GuestRamPlan, FirstSyncMapsEverything) {
    const GuestRamRegion desired[] = {region(4 * kGiB, kGiB, 3 * kGiB), region(0, 3 * kGiB, 0)};
    const auto plan = GuestRamMapper::plan({}, desired, kPage);
    EXPECT_TRUE(plan.unmap.empty());
    ASSERT_EQ(plan.map.size(), 2u);
    EXPECT_EQ(plan.map[0].gpa, 0u);  // sorted by GPA
    EXPECT_EQ(plan.map[1].gpa, 4 * kGiB);
}

TEST(GuestRamPlan, UnchangedRegionsAreLeftAlone) {
    const auto current = as_map({region(0, 3 * kGiB, 0), region(4 * kGiB, kGiB, 3 * kGiB)});
    const GuestRamRegion desired[] = {region(0, 3 * kGiB, 0), region(4 * kGiB, kGiB, 3 * kGiB)};
    const auto plan = GuestRamMapper::plan(current, desired, kPage);
    EXPECT_TRUE(plan.unmap.empty());
    EXPECT_TRUE(plan.map.empty());
}

TEST(GuestRamPlan, HotplugAndResize) {
    const auto current = as_map({region(0, 3 * kGiB, 0), region(4 * kGiB, kGiB, 3 * kGiB)});
    // The high region grows (remap), a new DIMM appears at 8 GiB.
    const GuestRamRegion desired[] = {region(0, 3 * kGiB, 0), region(4 * kGiB, 2 * kGiB, 3 * kGiB),
                                      region(8 * kGiB, kGiB, 5 * kGiB)};
    const auto plan = GuestRamMapper::plan(current, desired, kPage);
    ASSERT_EQ(plan.unmap.size(), 1u);
    EXPECT_EQ(plan.unmap[0].gpa, 4 * kGiB);
    EXPECT_EQ(plan.unmap[0].size, kGiB);
    ASSERT_EQ(plan.map.size(), 2u);
    EXPECT_EQ(plan.map[0].size, 2 * kGiB);
    EXPECT_EQ(plan.map[1].gpa, 8 * kGiB);
}

TEST(GuestRamPlan, RemovalUnmapsOnly) {
    const auto current = as_map({region(0, kGiB, 0), region(4 * kGiB, kGiB, kGiB)});
    const GuestRamRegion desired[] = {region(0, kGiB, 0)};
    const auto plan = GuestRamMapper::plan(current, desired, kPage);
    ASSERT_EQ(plan.unmap.size(), 1u);
    EXPECT_EQ(plan.unmap[0].gpa, 4 * kGiB);
    EXPECT_TRUE(plan.map.empty());
}

TEST(GuestRamPlan, RejectsOverlapWithBothGpas) {
    const GuestRamRegion desired[] = {region(0, 2 * kGiB, 0), region(kGiB, kGiB, 2 * kGiB)};
    try {
        GuestRamMapper::plan({}, desired, kPage);
        FAIL();
    } catch (const base::Error& error) {
        const std::string text = error.what();
        EXPECT_NE(text.find("0x0"), std::string::npos) << text;
        EXPECT_NE(text.find("0x40000000"), std::string::npos) << text;
        EXPECT_NE(text.find("overlap"), std::string::npos) << text;
    }
}

TEST(GuestRamPlan, RejectsMisalignedEmptyAndWrapping) {
    EXPECT_THROW(GuestRamMapper::validate(region(0x1001, kPage, 0), kPage), base::Error);
    EXPECT_THROW(GuestRamMapper::validate(region(0, kPage + 1, 0), kPage), base::Error);
    EXPECT_THROW(GuestRamMapper::validate(region(0, 0, 0), kPage), base::Error);
    EXPECT_THROW(GuestRamMapper::validate(region(~0ull & ~(kPage - 1), 2 * kPage, 0), kPage),
                 base::Error);
    EXPECT_THROW(GuestRamMapper::validate(region(0, kPage, 12), kPage), base::Error);
    GuestRamRegion nothing;
    nothing.size = kPage;
    EXPECT_THROW(GuestRamMapper::validate(nothing, kPage),
                 base::Error);  // no host address, no memfd
    EXPECT_NO_THROW(GuestRamMapper::validate(region(0, kPage, 0), kPage));
}

}  // namespace
}  // namespace iommufd_backend
