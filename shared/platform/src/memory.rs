//! The allocator every distnet program chooses, and heap memory back to the system after
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

pub use mimalloc::MiMalloc;

/// Makes mimalloc the allocator of the binary it is written in: one line in each
/// program's `main.rs` (the services, `distnet`, the benchmarks). Not chosen by this
/// library, because the fuzz targets link the same libraries and need the system
/// allocator for AddressSanitizer to see the heap.
#[macro_export]
macro_rules! use_mimalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::memory::MiMalloc = $crate::memory::MiMalloc;
    };
}

/// Returns the allocator's free pages to the system (in a binary that has not chosen
/// mimalloc, there are none of its pages to return). Costs a walk of the heap: call it
/// after batches, not per request.
pub fn release_free_memory() {
    // SAFETY: mi_collect only frees memory the allocator holds unused; it takes no
    // pointers and may be called from any thread.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
