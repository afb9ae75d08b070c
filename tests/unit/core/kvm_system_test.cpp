// vmm::kvm::KvmSystem's refusals: a path that is not KVM, a missing device,
// a wrong API version and each missing capability give one line naming the
// problem. The version and capability checks get faked answers (no real KVM
// reports them); the last test opens the real /dev/kvm where there is one.
#include "vmm/kvm/kvm_system.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "base/error.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string open_error(const std::string& path) {
    try {
        vmm::kvm::KvmSystem::open(path);
    } catch (const base::Error& error) {
        return error.what();
    }
    return "(no error)";
}

TEST(KvmSystemOpen, ACharacterDeviceThatIsNotKvmIsNamedAsSuch) {
    const auto message = open_error("/dev/null");
    EXPECT_THAT(message, HasSubstr("/dev/null is not a KVM device"));
    EXPECT_THAT(message, Not(HasSubstr("API version -1"))) << "a failed ioctl is not a version";
    EXPECT_THAT(message, Not(HasSubstr("\n")));
}

TEST(KvmSystemOpen, ARegularFileIsNotAKvmDevice) {
    char path[] = "/tmp/vmm-kvm-system-test.XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::close(fd);
    const auto message = open_error(path);
    ::unlink(path);
    EXPECT_THAT(message, HasSubstr(std::string(path) + " is not a KVM device"));
    EXPECT_THAT(message, Not(HasSubstr("\n")));
}

TEST(KvmSystemOpen, AMissingDeviceSaysThereIsNoKvm) {
    const auto message = open_error("/nonexistent-dir/kvm");
    EXPECT_THAT(message, HasSubstr("/nonexistent-dir/kvm does not exist"));
    EXPECT_THAT(message, HasSubstr("no KVM"));
    EXPECT_THAT(message, Not(HasSubstr("\n")));
}

TEST(KvmSystemOpen, ADirectoryGivesTheSystemError) {
    const auto directory = std::filesystem::temp_directory_path().string();
    const auto message = open_error(directory);
    EXPECT_THAT(message, HasSubstr("opening " + directory));
    EXPECT_THAT(message, HasSubstr(std::strerror(EISDIR)));
}

TEST(KvmApiVersion, OnlyTwelveIsAccepted) {
    EXPECT_NO_THROW(vmm::kvm::check_api_version("/dev/kvm", KVM_API_VERSION, 0));
    try {
        vmm::kvm::check_api_version("/dev/kvm", 11, 0);
        FAIL() << "version 11 accepted";
    } catch (const base::Error& error) {
        EXPECT_STREQ(error.what(), "/dev/kvm reports KVM API version 11, this VMM needs 12");
    }
}

TEST(KvmApiVersion, AFailedIoctlMeansNotKvm) {
    try {
        vmm::kvm::check_api_version("/dev/thing", -1, ENOTTY);
        FAIL() << "a failed KVM_GET_API_VERSION accepted";
    } catch (const base::Error& error) {
        EXPECT_THAT(error.what(), HasSubstr("/dev/thing is not a KVM device"));
        EXPECT_THAT(error.what(), HasSubstr(std::strerror(ENOTTY)));
    }
}

TEST(KvmCapabilities, AllPresentIsAccepted) {
    EXPECT_NO_THROW(vmm::kvm::check_capabilities([](long) { return 1; }));
}

TEST(KvmCapabilities, EachMissingOneIsNamedWithWhatItIsFor) {
    for (const auto& required : vmm::kvm::required_capabilities()) {
        SCOPED_TRACE(required.name);
        for (const int answer : {0, -1}) {  // absent, and KVM_CHECK_EXTENSION failing
            try {
                vmm::kvm::check_capabilities([&](long capability) {
                    return capability == required.capability ? answer : 1;
                });
                ADD_FAILURE() << "missing capability accepted";
            } catch (const base::Error& error) {
                EXPECT_EQ(error.what(), std::string("KVM lacks ") + required.name +
                                            ", needed for " + required.used_for);
            }
        }
    }
}

// The list is the set of capabilities whose ioctls the VMM makes: change it
// together with the ioctls. KVM_CAP_MP_STATE (no KVM_SET_MP_STATE: APs start
// through INIT/SIPI) and KVM_CAP_SIGNAL_MSI (MSIs go through routing + irqfd)
// are deliberately absent.
TEST(KvmCapabilities, TheListIsExactlyWhatTheVmmUses) {
    std::set<long> listed;
    for (const auto& required : vmm::kvm::required_capabilities()) {
        EXPECT_TRUE(listed.insert(required.capability).second) << required.name << " twice";
    }
    const std::set<long> used = {KVM_CAP_USER_MEMORY,
                                 KVM_CAP_IRQCHIP,
                                 KVM_CAP_PIT2,
                                 KVM_CAP_SET_TSS_ADDR,
                                 KVM_CAP_SET_IDENTITY_MAP_ADDR,
                                 KVM_CAP_EXT_CPUID,
                                 KVM_CAP_IMMEDIATE_EXIT,
                                 KVM_CAP_IRQFD,
                                 KVM_CAP_IOEVENTFD,
                                 KVM_CAP_IRQ_ROUTING};
    EXPECT_EQ(listed, used);
}

TEST(KvmSystemOpen, TheRealDevicePassesEveryCheck) {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) {
        GTEST_SKIP() << "no usable /dev/kvm on this host (" << std::strerror(errno) << ")";
    }
    const auto kvm = vmm::kvm::KvmSystem::open();
    EXPECT_GE(kvm.max_vcpus(), 1);
    EXPECT_GE(kvm.vcpu_mmap_size(), sizeof(kvm_run));
    EXPECT_FALSE(kvm.supported_cpuid().empty());
}

}  // namespace
