#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "iommufd_backend/feature.hpp"
#include "iommufd_backend/ioctl_error.hpp"

namespace iommufd_backend {
namespace {

TEST(IoctlError, NamesTheIoctlTheObjectsAndTheErrno) {
    const IoctlError error("IOMMU_IOAS_MAP", EEXIST,
                           {{"ioas", 3}, hex_param("iova", 0x1000), hex_param("length", 0x2000)});
    const std::string text = error.what();
    EXPECT_EQ(text,
              "IOMMU_IOAS_MAP (ioas 3, iova 0x1000, length 0x2000) failed: File exists [EEXIST]");
    EXPECT_EQ(error.error_number(), EEXIST);
    EXPECT_EQ(error.ioctl(), "IOMMU_IOAS_MAP");
    EXPECT_EQ(error.param("ioas"), 3u);
    EXPECT_EQ(error.param("iova"), 0x1000u);
    EXPECT_FALSE(error.param("hwpt"));
}

TEST(IoctlError, IsABaseSystemError) {
    try {
        throw IoctlError("IOMMU_DESTROY", ENOENT, {{"hwpt", 42}});
    } catch (const base::SystemError& error) {
        EXPECT_EQ(error.error_number(), ENOENT);
        EXPECT_NE(std::string(error.what()).find("hwpt 42"), std::string::npos);
    }
}

TEST(IoctlError, AppendsTheHint) {
    const IoctlError error("IOMMU_DESTROY", EBUSY, {{"ioas", 1}}, "the object is still in use");
    EXPECT_EQ(std::string(error.what()),
              "IOMMU_DESTROY (ioas 1) failed: Device or resource busy [EBUSY]. the object is still "
              "in use");
}

TEST(IoctlError, ThrowHelperAddsGenericHints) {
    try {
        throw_ioctl_error("IOMMU_DESTROY", EBADF, Feature::Iommufd, {{"ioas", 7}});
        FAIL();
    } catch (const UnsupportedError&) {
        FAIL() << "EBADF is not a missing feature";
    } catch (const IoctlError& error) {
        EXPECT_NE(std::string(error.what()).find("not open"), std::string::npos) << error.what();
    }
}

TEST(InvalidateError, ReportsPartialCompletion) {
    const InvalidateError error(EINVAL, {{"hwpt", 5}, {"entries", 4}}, 2, 4);
    EXPECT_EQ(error.handled(), 2u);
    EXPECT_EQ(error.requested(), 4u);
    EXPECT_NE(std::string(error.what()).find("handled 2 of 4 entries; entry 2 was refused"),
              std::string::npos)
        << error.what();
}

TEST(MissingFeature, OlderKernelGetsTheVersionThatAddedIt) {
    const std::string hint =
        missing_feature_hint(Feature::IoasMapFile, ENOTTY, KernelVersion{6, 12, 117});
    EXPECT_EQ(hint,
              "IOMMU_IOAS_MAP_FILE (mapping a memfd by file offset) needs Linux 6.13 or newer; "
              "this kernel is "
              "6.12.117");
    // E2BIG (unknown struct tail) and EOPNOTSUPP (unknown flag/type) mean the same.
    EXPECT_FALSE(missing_feature_hint(Feature::FaultQueue, E2BIG, KernelVersion{6, 8, 0}).empty());
    EXPECT_FALSE(
        missing_feature_hint(Feature::PasidAttach, EINVAL, KernelVersion{6, 12, 0}).empty());
}

TEST(MissingFeature, NewEnoughKernelGetsNoVersionHint) {
    EXPECT_TRUE(
        missing_feature_hint(Feature::IoasMapFile, ENOTTY, KernelVersion{6, 13, 0}).empty());
    EXPECT_TRUE(missing_feature_hint(Feature::Iommufd, EINVAL, KernelVersion{6, 12, 117}).empty());
}

TEST(MissingFeature, OtherErrnosAreNotAboutVersions) {
    EXPECT_TRUE(missing_feature_hint(Feature::IoasMapFile, ENOENT, KernelVersion{6, 1, 0}).empty());
    EXPECT_TRUE(missing_feature_hint(Feature::IoasMapFile, EBUSY, KernelVersion{6, 1, 0}).empty());
}

TEST(MissingFeature, OurOwnPatchesAreNamedAsSuch) {
    const std::string hint =
        missing_feature_hint(Feature::KvmManagedHwpt, EOPNOTSUPP, KernelVersion{6, 12, 117});
    EXPECT_NE(hint.find("IOMMU_HWPT_DATA_KVM"), std::string::npos);
    EXPECT_NE(hint.find("kernel-patches/"), std::string::npos);
    EXPECT_NE(hint.find("6.12.117"), std::string::npos);
}

TEST(MissingFeature, KvmHintOnlyWhenTheKernelDoesNotKnowTheDataType) {
    // EOPNOTSUPP is how IOMMU_HWPT_ALLOC refuses an unknown data type.
    EXPECT_NE(missing_feature_hint(Feature::KvmManagedHwpt, EOPNOTSUPP, KernelVersion{6, 12, 118})
                  .find("kernel-patches/"),
              std::string::npos);
    // EINVAL means the kernel took the type and disliked a value (a bad
    // vm_fd on a patched kernel): a real error, not a missing series.
    EXPECT_EQ(missing_feature_hint(Feature::KvmManagedHwpt, EINVAL, KernelVersion{6, 12, 118}), "");
    try {
        throw_ioctl_error("IOMMU_HWPT_ALLOC", EINVAL, Feature::KvmManagedHwpt, {{"dev", 1}});
        FAIL();
    } catch (const UnsupportedError& error) {
        FAIL() << "EINVAL reported as a missing kernel-patches/ series: " << error.what();
    } catch (const IoctlError& error) {
        EXPECT_EQ(std::string(error.what()),
                  "IOMMU_HWPT_ALLOC (dev 1) failed: Invalid argument [EINVAL]");
    }
}

TEST(MissingFeature, FaultsOnAPagingHwptNeed613) {
    EXPECT_EQ(
        missing_feature_hint(Feature::PagingHwptFaults, EOPNOTSUPP, KernelVersion{6, 12, 118}),
        "IOMMU_HWPT_FAULT_ID_VALID (paging HWPT) (I/O page faults on a paging (not nested) "
        "HWPT) needs Linux 6.13 or newer; this kernel is 6.12.118");
    EXPECT_EQ(missing_feature_hint(Feature::PagingHwptFaults, EOPNOTSUPP, KernelVersion{6, 13, 0}),
              "");
}

TEST(ErrnoName, SymbolicNames) {
    EXPECT_EQ(errno_name(EINVAL), "EINVAL");
    EXPECT_EQ(errno_name(ENOTTY), "ENOTTY");
    EXPECT_EQ(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
}

}  // namespace
}  // namespace iommufd_backend
