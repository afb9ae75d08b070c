#include "iommufd_backend/kernel_version.hpp"

#include <gtest/gtest.h>

#include "iommufd_backend/feature.hpp"

namespace iommufd_backend {
namespace {

TEST(KernelVersion, ParsesDistributionReleases) {
    EXPECT_EQ(KernelVersion::parse("6.12.117+deb12-amd64"), (KernelVersion{6, 12, 117}));
    EXPECT_EQ(KernelVersion::parse("6.1.0-28-cloud-amd64"), (KernelVersion{6, 1, 0}));
    EXPECT_EQ(KernelVersion::parse("6.13-rc1"), (KernelVersion{6, 13, 0}));
    EXPECT_EQ(KernelVersion::parse("5.10.0"), (KernelVersion{5, 10, 0}));
}

TEST(KernelVersion, RejectsGarbage) {
    EXPECT_FALSE(KernelVersion::parse(""));
    EXPECT_FALSE(KernelVersion::parse("linux"));
    EXPECT_FALSE(KernelVersion::parse("6"));
    EXPECT_FALSE(KernelVersion::parse("6."));
}

TEST(KernelVersion, OrdersAndPrints) {
    EXPECT_LT((KernelVersion{6, 12, 117}), (KernelVersion{6, 13, 0}));
    EXPECT_LT((KernelVersion{5, 19, 0}), (KernelVersion{6, 2, 0}));
    EXPECT_EQ((KernelVersion{6, 12, 117}).to_string(), "6.12.117");
    EXPECT_EQ((KernelVersion{6, 13, 0}).to_string(), "6.13");
}

TEST(KernelVersion, RunningKernelIsParseable) {
    // Every Linux release string starts with major.minor.
    ASSERT_TRUE(KernelVersion::running().has_value());
    EXPECT_GE(KernelVersion::running()->major, 3u);
}

TEST(Feature, EveryFeatureHasANameAndMostAVersion) {
    for (auto feature :
         {Feature::Iommufd, Feature::VfioDeviceCdev, Feature::HwptAlloc, Feature::HwInfo,
          Feature::NestedHwpt, Feature::DirtyTracking, Feature::HwptInvalidate, Feature::FaultQueue,
          Feature::IoasMapFile, Feature::Viommu, Feature::ArmSmmuV3Nesting, Feature::PasidAttach,
          Feature::KvmManagedHwpt}) {
        const auto& info = feature_info(feature);
        EXPECT_EQ(info.feature, feature);
        EXPECT_FALSE(info.name.empty());
        EXPECT_EQ(info.since.has_value(), feature != Feature::KvmManagedHwpt) << info.name;
    }
    EXPECT_EQ(*feature_info(Feature::IoasMapFile).since, (KernelVersion{6, 13, 0}));
    EXPECT_EQ(*feature_info(Feature::FaultQueue).since, (KernelVersion{6, 11, 0}));
}

}  // namespace
}  // namespace iommufd_backend
