//! Heap memory back to the system after a large, rare batch (the network-wide
//! insights refresh reads every retailer's history at once). glibc keeps freed heap
//! pages for reuse, so a service that ran one such batch stayed ~50 MB above its
//! steady state (71 MB against 16 MB resident for customers after refreshing 11,500
//! retailers); trimming returns the free pages and keeps what is live.

/// Returns the allocator's free pages to the system (glibc on Linux; a no-op
/// elsewhere). Costs a walk of the heap: call it after batches, not per request.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory; it is thread-safe in glibc
        // and takes no pointers.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}
