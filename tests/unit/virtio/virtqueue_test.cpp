#include "devices/virtio/virtqueue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <utility>

#include "tests/unit/virtio/queue_builder.hpp"

namespace devices::virtio {
namespace {

using testing::default_queue;
using testing::QueueBuilder;

// 1 MiB of RAM at 0 and another MiB at 16 MiB: a hole to point into.
vmm::GuestMemory make_memory() {
    const std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 2> ranges{
        {{0, 1 << 20}, {16 << 20, 1 << 20}}};
    return vmm::GuestMemory::create(ranges);
}

struct VirtqueueTest : ::testing::Test {
    vmm::GuestMemory memory = make_memory();
    QueueBuilder driver{memory, default_queue()};
    Virtqueue make(bool event_idx = false, bool indirect = true) {
        return Virtqueue(memory, driver.config(), event_idx, indirect);
    }
};

TEST_F(VirtqueueTest, EmptyQueuePopsNothing) {
    auto queue = make();
    EXPECT_FALSE(queue.pop());
    EXPECT_FALSE(queue.has_available());
}

TEST_F(VirtqueueTest, WalksAChainInOrder) {
    driver.set_descriptor(0, 0x10000, 16, kDescNext, 5);
    driver.set_descriptor(5, 0x20000, 512, kDescNext | kDescWrite, 2);
    driver.set_descriptor(2, 0x30000, 1, kDescWrite);
    driver.publish(0);
    auto queue = make();
    auto chain = queue.pop();
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->head, 0);
    ASSERT_EQ(chain->readable.size(), 1u);
    ASSERT_EQ(chain->writable.size(), 2u);
    EXPECT_EQ(chain->readable[0].guest_address, 0x10000u);
    EXPECT_EQ(chain->writable[1].guest_address, 0x30000u);
    EXPECT_EQ(chain->readable_bytes, 16u);
    EXPECT_EQ(chain->writable_bytes, 513u);
    EXPECT_FALSE(queue.pop());
    queue.push_used(0, 513);
    EXPECT_EQ(driver.used_idx(), 1);
    EXPECT_EQ(driver.used(0).id, 0u);
    EXPECT_EQ(driver.used(0).length, 513u);
}

TEST_F(VirtqueueTest, BuffersInTheSecondRegionAreFine) {
    driver.set_descriptor(0, (16 << 20) + 100, 200);
    driver.publish(0);
    auto queue = make();
    auto chain = queue.pop();
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->readable[0].bytes.size(), 200u);
}

TEST_F(VirtqueueTest, IndirectTable) {
    const std::uint64_t table = 0x8000;
    driver.set_indirect(table, 0, 0x10000, 16, kDescNext, 1);
    driver.set_indirect(table, 1, 0x11000, 4096, kDescNext, 2);
    driver.set_indirect(table, 2, 0x12000, 1, kDescWrite);
    driver.set_descriptor(3, table, 3 * 16, kDescIndirect);
    driver.publish(3);
    auto queue = make();
    auto chain = queue.pop();
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->head, 3);
    EXPECT_EQ(chain->readable.size(), 2u);
    EXPECT_EQ(chain->writable.size(), 1u);
}

// Every malformed case ends as VirtqueueError, never a crash or a hang.
struct Malformed {
    const char* name;
    void (*setup)(QueueBuilder&);
};

const Malformed kMalformed[] = {
    {"head outside the queue", [](QueueBuilder& d) { d.publish(16); }},
    {"next outside the queue",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x10000, 16, kDescNext, 99);
         d.publish(0);
     }},
    {"chain loops on itself",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x10000, 16, kDescNext, 0);
         d.publish(0);
     }},
    {"chain loops through two descriptors",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x10000, 16, kDescNext, 1);
         d.set_descriptor(1, 0x10000, 16, kDescNext, 0);
         d.publish(0);
     }},
    {"buffer outside guest RAM",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x200000, 16);
         d.publish(0);
     }},
    {"buffer straddles the end of RAM",
     [](QueueBuilder& d) {
         d.set_descriptor(0, (1 << 20) - 8, 16);
         d.publish(0);
     }},
    {"buffer address + length overflows",
     [](QueueBuilder& d) {
         d.set_descriptor(0, ~std::uint64_t{0} - 4, 16);
         d.publish(0);
     }},
    {"readable after writable",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x10000, 16, kDescNext | kDescWrite, 1);
         d.set_descriptor(1, 0x11000, 16);
         d.publish(0);
     }},
    {"available index more than a queue ahead", [](QueueBuilder& d) { d.set_avail_idx(17); }},
    {"indirect and next together",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x8000, 32, kDescIndirect | kDescNext, 1);
         d.publish(0);
     }},
    {"indirect table of odd length",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x8000, 24, kDescIndirect);
         d.publish(0);
     }},
    {"empty indirect table",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x8000, 0, kDescIndirect);
         d.publish(0);
     }},
    {"huge indirect table",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x8000, 16 * 2048, kDescIndirect);
         d.publish(0);
     }},
    {"indirect table outside RAM",
     [](QueueBuilder& d) {
         d.set_descriptor(0, 0x3ff000, 32, kDescIndirect);
         d.publish(0);
     }},
    {"nested indirect",
     [](QueueBuilder& d) {
         d.set_indirect(0x8000, 0, 0x9000, 16, kDescIndirect);
         d.set_descriptor(0, 0x8000, 16, kDescIndirect);
         d.publish(0);
     }},
    {"indirect table loops",
     [](QueueBuilder& d) {
         d.set_indirect(0x8000, 0, 0x10000, 16, kDescNext, 1);
         d.set_indirect(0x8000, 1, 0x10000, 16, kDescNext, 0);
         d.set_descriptor(0, 0x8000, 32, kDescIndirect);
         d.publish(0);
     }},
    {"indirect next outside the table",
     [](QueueBuilder& d) {
         d.set_indirect(0x8000, 0, 0x10000, 16, kDescNext, 2);
         d.set_descriptor(0, 0x8000, 32, kDescIndirect);
         d.publish(0);
     }},
};

TEST_F(VirtqueueTest, MalformedChainsAreRejected) {
    for (const auto& test : kMalformed) {
        auto memory_case = make_memory();
        QueueBuilder builder(memory_case, default_queue());
        test.setup(builder);
        Virtqueue queue(memory_case, builder.config(), false, true);
        EXPECT_THROW(queue.pop(), VirtqueueError) << test.name;
    }
}

TEST(VirtqueueLimits, ChainsOfMoreThan4GiBAreRejected) {
    // Sparse memfd: the 4 GiB are never touched.
    const std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1> ranges{
        {{0, (4ull << 30) + 4096}}};
    auto memory = vmm::GuestMemory::create(ranges);
    QueueBuilder driver(memory, default_queue());
    driver.set_descriptor(0, 0, 0xffff'f000, kDescNext, 1);
    driver.set_descriptor(1, 0, 0x2000);
    driver.publish(0);
    Virtqueue queue(memory, driver.config(), false, false);
    EXPECT_THROW(queue.pop(), VirtqueueError);
}

TEST_F(VirtqueueTest, IndirectWithoutTheFeatureIsRejected) {
    driver.set_indirect(0x8000, 0, 0x10000, 16);
    driver.set_descriptor(0, 0x8000, 16, kDescIndirect);
    driver.publish(0);
    auto queue = make(false, /*indirect=*/false);
    EXPECT_THROW(queue.pop(), VirtqueueError);
}

TEST_F(VirtqueueTest, BadRingGeometryIsRejected) {
    const QueueConfig bad[] = {
        {0, 0x1000, 0x3000, 0x4000},                  // size 0
        {12, 0x1000, 0x3000, 0x4000},                 // not a power of two
        {16, 0x1008, 0x3000, 0x4000},                 // descriptor table misaligned
        {16, 0x1000, 0x3001, 0x4000},                 // available ring misaligned
        {16, 0x1000, 0x3000, 0x4002},                 // used ring misaligned
        {16, 0x200000, 0x3000, 0x4000},               // table in the hole
        {16, 0x1000, 0xfffff0, 0x4000},               // avail ring runs off RAM
        {16, 0x1000, 0x3000, ~std::uint64_t{0} - 3},  // used ring wraps
        {32768, 0xc0000, 0x3000, 0x4000},             // table runs off the end of RAM
    };
    for (const auto& config : bad) {
        EXPECT_THROW(Virtqueue(memory, config, false, false), VirtqueueError)
            << "size " << config.size << " desc " << config.desc_table;
    }
}

TEST_F(VirtqueueTest, GuestRewritingTheRingDoesNotConfuseTheParser) {
    driver.set_descriptor(0, 0x10000, 16);
    driver.publish(0);
    auto queue = make();
    auto chain = queue.pop();
    ASSERT_TRUE(chain);
    // Rewriting the descriptor after the pop changes nothing already parsed.
    driver.set_descriptor(0, 0x200000, 16);
    EXPECT_EQ(chain->readable[0].guest_address, 0x10000u);
}

TEST_F(VirtqueueTest, IndexWrapsAround) {
    auto queue = make();
    driver.set_descriptor(0, 0x10000, 16);
    for (int i = 0; i < 70000; ++i) {
        driver.publish(0);
        auto chain = queue.pop();
        ASSERT_TRUE(chain);
        queue.push_used(chain->head, 0);
    }
    EXPECT_EQ(driver.used_idx(), static_cast<std::uint16_t>(70000));
}

TEST_F(VirtqueueTest, InterruptSuppressionWithoutEventIdx) {
    driver.set_descriptor(0, 0x10000, 16);
    auto queue = make();
    EXPECT_FALSE(queue.needs_interrupt());  // nothing used yet
    driver.publish(0);
    queue.push_used(queue.pop()->head, 0);
    EXPECT_TRUE(queue.needs_interrupt());
    driver.set_avail_flags(kAvailNoInterrupt);
    driver.publish(0);
    queue.push_used(queue.pop()->head, 0);
    EXPECT_FALSE(queue.needs_interrupt());
}

TEST_F(VirtqueueTest, EventIdx) {
    driver.set_descriptor(0, 0x10000, 16);
    auto queue = make(/*event_idx=*/true);
    // The driver wants an interrupt once used index passes 2.
    driver.set_used_event(2);
    for (int i = 0; i < 2; ++i) {
        driver.publish(0);
        queue.push_used(queue.pop()->head, 0);
        EXPECT_FALSE(queue.needs_interrupt()) << i;
    }
    driver.publish(0);
    queue.push_used(queue.pop()->head, 0);
    EXPECT_TRUE(queue.needs_interrupt());
    // enable_notification publishes avail_event = next available index.
    EXPECT_FALSE(queue.enable_notification());
    EXPECT_EQ(driver.avail_event(), 3);
    driver.publish(0);
    EXPECT_TRUE(queue.enable_notification());
}

}  // namespace
}  // namespace devices::virtio
