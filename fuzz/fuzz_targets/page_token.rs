//! Page tokens come from clients: decoding any bytes must give a page or
//! INVALID_ARGUMENT naming `page_token` (or `page_size`), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (size, token) = match data.split_first() {
        Some((&first, rest)) => (i32::from(first) - 16, String::from_utf8_lossy(rest).into_owned()),
        None => (0, String::new()),
    };
    match distnet_platform::pagination::read(size, &token, "area=a1") {
        Ok(page) => assert!((1..=distnet_platform::pagination::MAX_PAGE_SIZE).contains(&page.size)),
        Err(error) => assert_eq!(error.code, tonic::Code::InvalidArgument),
    }
});
