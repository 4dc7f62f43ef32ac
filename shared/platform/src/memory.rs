//! The allocator every distnet binary uses, and heap memory back to the system after
//! a large, rare batch.
//!
//! mimalloc instead of glibc's malloc: the request paths allocate and free many small
//! strings and buffers on one thread and hand some to another (a profile cloned for
//! a reply, HTTP/2 frames), and glibc's arenas made `malloc`/`free` about a fifth of
//! a cached read's CPU (BENCHMARKS.md, "Fixes made from these measurements").
//!
//! The network-wide insights refresh holds every retailer's inputs until it has
//! assessed them all; the allocator keeps freed pages for reuse, so a service that ran
//! one such batch would stay well above its steady state. [`release_free_memory`]
//! returns them.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the allocator's free pages to the system. Costs a walk of the heap: call
/// it after batches, not per request.
pub fn release_free_memory() {
    // SAFETY: mi_collect only frees memory the allocator holds unused; it takes no
    // pointers and may be called from any thread.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
