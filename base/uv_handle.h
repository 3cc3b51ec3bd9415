// Ownership of libuv handles: a handle must outlive its uv_close() until the close callback runs,
// so the owner gives it up to the loop, which frees it in that callback. Two shapes, one rule:
// - a bare handle: UvHandle<uv_timer_t> (below), closed when the pointer dies;
// - a heap object that embeds its handle (a connection with its buffers) and is the handle's
//   `data`: closeAndDelete(object, &object->pipe) closes the handle and deletes the object in
//   the close callback.
#pragma once

#include <uv.h>

#include <memory>

namespace vmmd {

template <typename Handle>
struct UvHandleCloser {
  void operator()(Handle* handle) const {
    if (!handle) return;
    auto* base = reinterpret_cast<uv_handle_t*>(handle);
    if (uv_is_closing(base)) return;  // already handed to the loop
    uv_close(base, [](uv_handle_t* closed) { std::unique_ptr<Handle> owned(reinterpret_cast<Handle*>(closed)); });
  }
};

// A heap-allocated libuv handle closed (and then freed by the loop) when this pointer dies.
template <typename Handle>
using UvHandle = std::unique_ptr<Handle, UvHandleCloser<Handle>>;

template <typename Handle>
UvHandle<Handle> makeUvHandle() {
  return UvHandle<Handle>(std::make_unique<Handle>().release());
}

// Closes `handle` (embedded in `owner`, whose address is handle->data) and deletes `owner` once
// the loop is done with the handle.
template <typename Owner, typename Handle>
void closeAndDelete(Owner* owner, Handle* handle) {
  auto* base = reinterpret_cast<uv_handle_t*>(handle);
  base->data = owner;
  uv_close(base, [](uv_handle_t* closed) { std::unique_ptr<Owner> owned(static_cast<Owner*>(closed->data)); });
}

// uv_read_start's allocation callback for an owner (the handle's `data`) that reads into one
// array member, `buffer`: uv_read_start(stream, readIntoBuffer<Owner>, on_read).
template <typename Owner>
void readIntoBuffer(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* owner = static_cast<Owner*>(handle->data);
  *buf = uv_buf_init(owner->buffer, sizeof owner->buffer);
}

}  // namespace vmmd
