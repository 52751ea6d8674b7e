//! Session token verification from arbitrary bytes: a token is refused or
//! accepted, never a panic. Half the inputs are mutations of a real token
//! (a byte flipped, a segment swapped), so that the fuzzer spends its time
//! past the first `.`; none of them may verify, since only the untouched
//! token carries our signature over its exact bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::http::identity::{UserType, issue_token, verify_token};

fuzz_target!(|data: &[u8]| {
    let auth = chat_backend_fuzz::auth();
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        let _ = verify_token(&auth, &token);
        return;
    }
    let user = chat_backend_fuzz::USER;
    let real = issue_token(&auth, user, UserType::Regular, Some("ada@example.com"))
        .expect("issue a token");
    let mut bytes = real.clone().into_bytes();
    for pair in rest.chunks(2) {
        if let [at, value] = pair {
            let i = usize::from(*at) % bytes.len();
            bytes[i] = *value;
        }
    }
    let mutated = String::from_utf8_lossy(&bytes).into_owned();
    match verify_token(&auth, &mutated) {
        Ok(identity) => {
            // Base64 has a few spellings of the same bytes at a segment's
            // end; anything else that verifies is a forgery.
            assert_eq!(
                identity.user_id, user,
                "a mutated token verified as another user: {mutated}"
            );
        }
        Err(_) => {}
    }
});
