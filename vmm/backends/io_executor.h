// The block devices' executor on a libuv loop: requests run on libuv's thread pool
// (UV_THREADPOOL_SIZE threads, 4 by default), their completions back on the loop's thread.
#pragma once

#include <uv.h>

#include "base/result.h"
#include "vmm/devices/virtio/blk.h"

namespace vmmd {

virtio::VirtioBlk::Executor uvIoExecutor(uv_loop_t* loop);

// -sandbox on: starts libuv's thread pool now and has every pool thread narrow itself to the
// I/O role (vmm/sandbox) before it serves a request; returns once all of them have.
Status startConfinedIoPool(uv_loop_t* loop);

}  // namespace vmmd
