#include <gtest/gtest.h>

#include <string>

#include "iommufd_backend/fault_queue.hpp"

namespace iommufd_backend {
namespace {

iommu_hwpt_pgfault fault(std::uint32_t grpid, bool last, std::uint32_t cookie) {
    iommu_hwpt_pgfault record{};
    record.grpid = grpid;
    record.flags = last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0;
    record.cookie = cookie;
    return record;
}

TEST(FaultGroups, SplitAtLastPage) {
    const auto groups =
        FaultQueue::split_groups({fault(1, false, 7), fault(1, true, 7), fault(2, true, 8)});
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups[0].faults.size(), 2u);
    EXPECT_EQ(groups[0].cookie(), 7u);
    EXPECT_EQ(groups[1].faults.size(), 1u);
    EXPECT_EQ(groups[1].cookie(), 8u);
}

TEST(FaultGroups, EmptyAndUnterminated) {
    EXPECT_TRUE(FaultQueue::split_groups({}).empty());
    const auto groups = FaultQueue::split_groups({fault(3, false, 9)});
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].cookie(), 9u);
}

TEST(FaultGroups, AnEmptyGroupHasNoCookie) {
    // Was faults.back() on an empty vector: undefined behaviour.
    const FaultGroup empty;
    try {
        (void)empty.cookie();
        FAIL() << "an empty group returned a cookie";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find("empty fault group"), std::string::npos)
            << error.what();
    }
}

}  // namespace
}  // namespace iommufd_backend
